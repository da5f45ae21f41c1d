/** What Raft nodes say to each other, and what the core hands its driver. */

import type { Entry, HardState, Snapshot } from "./types.ts";

export type Message =
  | {
    type: "vote";
    from: string;
    to: string;
    term: number;
    lastIndex: number;
    lastTerm: number;
    /** Set by a leadership transfer: the current leader asked for this election. */
    transfer?: boolean;
  }
  /** Leadership transfer: "campaign now", from the leader to a caught-up follower. */
  | { type: "timeout-now"; from: string; to: string; term: number }
  | { type: "vote-response"; from: string; to: string; term: number; granted: boolean }
  /** Pre-vote: "would you vote for me at `term`?" Changes no one's term or vote. */
  | { type: "pre-vote"; from: string; to: string; term: number; lastIndex: number; lastTerm: number }
  | { type: "pre-vote-response"; from: string; to: string; term: number; granted: boolean }
  | {
    type: "append";
    from: string;
    to: string;
    term: number;
    prevIndex: number;
    prevTerm: number;
    entries: Entry[];
    commit: number;
    /** The leader's read round this message confirms (ReadIndex). */
    round?: number;
  }
  /** InstallSnapshot: the leader no longer holds the entries this follower needs. Answered by an append-response. */
  | { type: "snapshot"; from: string; to: string; term: number; snapshot: Snapshot; round?: number }
  | {
    type: "append-response";
    from: string;
    to: string;
    term: number;
    success: boolean;
    index: number;
    round?: number;
  }
  /** ReadIndex from a follower to its leader, for the follower's read `ctx`: "confirm you lead, and say how far". */
  | { type: "read-index"; from: string; to: string; term: number; ctx: string }
  /**
   * The leader's answer once a quorum confirmed it still leads: `index` is its commit index when the request
   * arrived. The follower may serve `ctx` once it has applied `index`. A leader that cannot serve a read yet (none
   * of its term committed) or no longer leads sends nothing: the follower asks again.
   */
  | { type: "read-index-response"; from: string; to: string; term: number; ctx: string; index: number };

export interface Ready {
  /**
   * A snapshot from the leader that replaces this node's state: persist it (LogStore.saveSnapshot) and load it
   * into the state machine before anything else in this Ready.
   */
  snapshot?: Snapshot;
  /** Entries to persist (a suffix of the log; may overwrite what is stored from its first index on). */
  entries: Entry[];
  /** Set when term, vote or commit changed: persist before sending. */
  hardState?: HardState;
  /** To send once the above is durable. */
  messages: Message[];
  /** Committed entries to apply, in order. */
  committed: Entry[];
  /**
   * Linearizable reads (ReadIndex), this node's own or, on a follower, answered by the leader: once this node
   * has applied `index` (the driver waits for that; the core releases a follower's read as soon as the leader
   * answers, whatever this node's commit index), the read `ctx` may be answered from its state machine.
   */
  reads: { ctx: string; index: number }[];
}

/** Messages only a leader of the current term sends: they depend on nothing this node has yet to store. */
export function leaderMessage(m: Message): boolean {
  return m.type === "append" || m.type === "snapshot" || m.type === "timeout-now" || m.type === "read-index-response";
}

/**
 * Drops every append that a later one to the same peer, of the same term and from the same point, supersedes
 * (it carries the same entries and more, and a commit index and read round at least as new): a burst of proposals
 * in one Ready then costs one message per peer, not one each.
 */
export function coalesce(messages: readonly Message[]): Message[] {
  const seen = new Set<string>();
  const kept: Message[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.type === "append") {
      const key = `${m.to}\u0000${m.term}\u0000${m.prevIndex}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    kept.push(m);
  }
  return kept.reverse();
}
