/** The rules of elections that need nothing of a node but its log: who may campaign, who is up to date, whom to ask. */

import { isVoter, members } from "./config.ts";
import type { RaftLog } from "./log.ts";
import type { Message } from "./messages.ts";

/**
 * Learners and nodes outside the config only follow. A voter of the committed
 * config still campaigns when an uncommitted config drops it: otherwise, if
 * the only voters left were behind, no one could finish the change.
 */
export function mayCampaign(log: RaftLog, commit: number, id: string): boolean {
  return isVoter(log.config, id) || isVoter(log.configAt(commit), id);
}

/** A candidate whose log ends at (`lastIndex`, `lastTerm`) has everything `log` has that could be committed. */
export function upToDate(log: RaftLog, lastIndex: number, lastTerm: number): boolean {
  const mine = log.term(log.lastIndex)!;
  return lastTerm > mine || (lastTerm === mine && lastIndex >= log.lastIndex);
}

/** A (pre-)vote request for `term` to every other voter of the config in force. */
export function voteRequests(
  type: "vote" | "pre-vote",
  from: string,
  term: number,
  log: RaftLog,
  transfer: boolean,
): Message[] {
  const lastIndex = log.lastIndex, lastTerm = log.term(lastIndex)!;
  return members(log.config).filter((p) => p !== from && isVoter(log.config, p))
    .map((to) => ({ type, from, to, term, lastIndex, lastTerm, ...(transfer && { transfer }) }));
}
