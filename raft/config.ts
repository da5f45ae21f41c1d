/**
 * Membership by joint consensus (Raft paper, section 6): moving from C_old to
 * C_new goes through C_old,new, in which every decision (an election, a
 * commit, a read confirmation, check-quorum) needs a majority of C_old and,
 * separately, a majority of C_new. Only learners changing needs no joint step:
 * the voter sets, and so every majority, stay the same.
 */

import type { Config } from "./types.ts";

/** Test-only: count one majority of the union of both voter sets while joint (a classic mistake). */
export type QuorumBug = "joint-quorum-union";

export function isJoint(config: Config): boolean {
  return config.outgoing !== undefined;
}

/** Votes in some voter set (incoming or outgoing): may campaign, and is asked for votes. */
export function isVoter(config: Config, id: string): boolean {
  return config.voters.includes(id) || (config.outgoing?.includes(id) ?? false);
}

/** Everyone who receives the log. */
export function members(config: Config): string[] {
  return [...new Set([...config.voters, ...(config.outgoing ?? []), ...config.learners])].sort();
}

/** A majority of every voter set says yes (an empty set agrees to anything). */
export function hasQuorum(config: Config, yes: (id: string) => boolean, bug?: QuorumBug): boolean {
  return _voterSets(config, bug).every((set) => set.filter(yes).length >= Math.floor(set.length / 2) + 1);
}

/** The highest index a majority of every voter set has. */
export function quorumIndex(config: Config, match: (id: string) => number, bug?: QuorumBug): number {
  return Math.min(
    ..._voterSets(config, bug).map((set) => {
      if (set.length === 0) return Infinity;
      const sorted = set.map(match).sort((a, b) => b - a);
      return sorted[Math.floor(set.length / 2)];
    }),
  );
}

function _voterSets(config: Config, bug?: QuorumBug): string[][] {
  if (config.outgoing === undefined) return [config.voters];
  if (bug === "joint-quorum-union") return [[...new Set([...config.voters, ...config.outgoing])]];
  return [config.voters, config.outgoing];
}

/**
 * The config entry that starts a change from `current` to `target`: joint when
 * the voters change, the target itself when only learners do. A voter listed
 * as a learner too is a voter.
 */
export function startChange(current: Config, target: { voters: string[]; learners?: string[] }): Config {
  const voters = [...new Set(target.voters)].sort();
  const learners = [...new Set(target.learners ?? [])].filter((l) => !voters.includes(l)).sort();
  if (sameSet(voters, current.voters)) return { voters, learners };
  return { voters, outgoing: [...current.voters], learners };
}

/**
 * Why a leader whose log's latest config is `current` (set by the entry at
 * `configIndex`, with `commit` committed) cannot start `change`, or the config
 * entry that starts it. One change at a time: the previous one must be
 * committed and, if joint, left.
 */
export function planChange(
  current: Config,
  configIndex: number,
  commit: number,
  change: { voters: string[]; learners?: string[] },
): Config | string {
  if (configIndex > commit) return `the config change at index ${configIndex} is not committed yet`;
  if (isJoint(current)) return "the joint config has not been left yet";
  if (change.voters.length === 0) return "a config needs at least one voter";
  const next = startChange(current, change);
  return sameConfig(next, current) ? "the config is already that" : next;
}

/** The config that ends a joint one: C_new alone. */
export function leaveJoint(joint: Config): Config {
  return { voters: [...joint.voters], learners: [...joint.learners] };
}

export function sameConfig(a: Config, b: Config): boolean {
  return sameSet(a.voters, b.voters) && sameSet(a.learners, b.learners) &&
    (a.outgoing === undefined ? b.outgoing === undefined : b.outgoing !== undefined && sameSet(a.outgoing, b.outgoing));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** A config entry's data. */
export function encodeConfig(config: Config): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(config));
}

export function decodeConfig(data: Uint8Array): Config {
  const c = JSON.parse(new TextDecoder().decode(data)) as Config;
  return { voters: c.voters, ...(c.outgoing !== undefined && { outgoing: c.outgoing }), learners: c.learners };
}
