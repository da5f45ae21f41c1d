/** What a RaftNode is built with, and the shapes of its answers. */

import type { Entry, HardState, Snapshot } from "./types.ts";

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Test-only: classic bugs put back, to prove the simulator catches each (raft/sim_test.ts). */
export type RaftBug =
  | "vote-without-log-check"
  | "commit-old-term"
  | "vote-not-persisted"
  | "commit-past-verified"
  | "truncate-on-stale-append"
  | "ignore-stale-term-append"
  | "joint-quorum-union"
  | "read-without-quorum"
  /** A follower answers a read at its own commit index without asking the leader (stale when it lags). */
  | "follower-read-local-commit";

export interface RaftOptions {
  id: string;
  /** Every voter, this node included: the initial config (a snapshot's or a config entry's overrides it). */
  voters: string[];
  /** Members that receive the log but do not vote or count for quorum (catching up, or read replicas). */
  learners?: string[];
  /** Ticks without a leader before campaigning (randomized up to twice this). */
  electionTicks: number;
  heartbeatTicks: number;
  /** Uniform in [0, 1): the only randomness, injected. */
  random: () => number;
  /** Most entries in one append message. */
  maxBatch?: number;
  /** Most bytes of entry data in one append (default 8 MiB; at least one entry is always sent). */
  maxBatchBytes?: number;
  /** What was persisted before a restart; the driver loads `snapshot` into its state machine itself. */
  /**
   * What storage holds. `applied`: the last index a state machine that keeps its state applied durably (it was
   * committed, so the node knows its commit index is at least that, and does not hand those entries over again).
   */
  restore?: { hardState: HardState; entries: Entry[]; snapshot?: Snapshot; applied?: number };
  bug?: RaftBug;
}

/** A membership change: the voters and learners wanted. */
export interface ConfigChange {
  voters: string[];
  learners?: string[];
}

export type ChangeResult = { ok: true; index: number } | { ok: false; reason: string };
