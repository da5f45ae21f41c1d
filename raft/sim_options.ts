/** The simulator's knobs (which faults, how often, which bug to put back), its seeded randomness, and a node's record. */

import type { RaftBug, RaftNode, Ready } from "./core.ts";
import type { SimDisk } from "./sim_disk.ts";
import type { Kv } from "./kv.ts";
import type { Config, HardState } from "./types.ts";

/** mulberry32: small, seeded, good enough to explore schedules. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimNode {
  raft: RaftNode;
  /** The process runs. */
  alive: boolean;
  /** Taken out for good: no longer a member of the committed config. */
  removed: boolean;
  /** Ever a member of a committed config. */
  joined: boolean;
  disk: SimDisk;
  /** The state machine, rebuilt from the snapshot and the log at each start. */
  kv: Kv;
  /** Index applied through. */
  applied: number;
  /** ReadIndex reads released to this node, waiting for it to apply their index. */
  reads: { ctx: string; index: number }[];
  /** A Ready being persisted: its messages go out and its entries apply once the sync completes. */
  inflight?: { rd: Ready; syncAt: number; released: boolean };
  /** Paused (no ticks, no messages, memory kept) until this step. */
  pausedUntil: number;
  /** The config it was started with. */
  initial: Config;
  /** The durable hard state when it last went down. */
  downWith?: HardState;
  /** Down until this step (then it restarts). */
  downUntil: number;
  /** When a node removed from the config is shut down. */
  leavesAt?: number;
}

/** Test-only bugs: the core's, and two in the driver or state machine. */
export type SimBug = RaftBug | "ack-before-fsync" | "no-session-dedup";

export interface SimOptions {
  nodes: number;
  drop: number;
  duplicate: number;
  crash: number;
  /** Chance per step of a split, one-way or bridge partition (or healing one). */
  partition?: number;
  /** Non-voting members at the start. */
  learners?: number;
  /** Chance per message of a long delay (100 to 600 steps). */
  delay?: number;
  /** Chance per step that a node pauses for 50 to 400 steps (no ticks, no messages, memory kept). */
  pause?: number;
  /** Chance per step of a burst of 5 to 40 ticks at one node. */
  clockJump?: number;
  /** Chance per write that its sync completes 1 to 40 steps later. */
  slowDisk?: number;
  /** Chance per sync that fsync fails: the node goes down with the write unacknowledged. */
  fsyncError?: number;
  /** Chance per client action at a leader of a membership change instead. */
  membership?: number;
  /** A node snapshots and compacts once it applied this many entries past its last snapshot (0: never). */
  snapshotEvery?: number;
  clients?: number;
  /** Most entries in one append message (8 unless set). */
  maxBatch?: number;
  bug?: SimBug;
  /**
   * Test-only: leave out the invariant that nothing is acknowledged or applied before it is durable, to show that
   * a bug it catches does real damage downstream too.
   */
  trustDisk?: boolean;
}

/** Every fault at once: what CI and `deno task sim` run. */
export const allFaults: SimOptions = {
  nodes: 5,
  drop: 0.05,
  duplicate: 0.05,
  crash: 0.003,
  partition: 0.004,
  delay: 0.01,
  pause: 0.002,
  clockJump: 0.002,
  slowDisk: 0.15,
  fsyncError: 0.001,
  membership: 0.03,
  snapshotEvery: 8,
  clients: 6,
};
