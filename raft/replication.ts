/**
 * A leader's replication to its peers: what each has (raft/progress.ts), what
 * is on its way to it, and the appends (or snapshot) that bring it up to date.
 * Appends are pipelined: each entry goes out once, batched per peer per Ready,
 * at most MAX_AHEAD entries past what the peer acknowledged. The core decides
 * when (a proposal, a heartbeat, an answer); this decides what.
 */

import { quorumIndex } from "./config.ts";
import type { RaftLog } from "./log.ts";
import { limitBytes } from "./memory_store.ts";
import type { Message } from "./messages.ts";
import { Progress } from "./progress.ts";
import type { Config, Snapshot } from "./types.ts";

/** The most entries a leader sends a peer past what the peer acknowledged (a slow one is not flooded). */
const MAX_AHEAD = 1024;

/** What replication reads of the node it replicates for (the core, as it is when each message goes out). */
export interface Leading {
  readonly id: string;
  readonly term: number;
  readonly commit: number;
  readonly lastIndex: number;
  termAt(index: number): number;
  /** The read round under way (raft/read_index.ts), echoed by the answers; 0 when none. */
  readonly readRound: number;
  /** The latest snapshot: what a peer that needs compacted entries is sent. */
  readonly latestSnapshot: Snapshot | undefined;
}

export class Replication {
  readonly #node: Leading;
  readonly #log: RaftLog;
  readonly #send: (m: Message) => void;
  readonly #limits: { maxBatch: number; maxBatchBytes: number };
  readonly #progress = new Progress();
  /** Peers with entries appended since the last Ready was made: sent then, all in one message each. */
  readonly #unsent = new Set<string>();

  constructor(
    node: Leading,
    log: RaftLog,
    send: (m: Message) => void,
    limits: { maxBatch?: number; maxBatchBytes?: number },
  ) {
    this.#node = node;
    this.#log = log;
    this.#send = send;
    this.#limits = { maxBatch: limits.maxBatch ?? 64, maxBatchBytes: limits.maxBatchBytes ?? 8 << 20 };
  }

  /** A new term's leadership: nothing is known of any peer. */
  reset(): void {
    this.#progress.reset();
  }

  /** The highest index `peer` is known to have. */
  match(peer: string): number {
    return this.#progress.match(peer);
  }

  /** The peers heard from since the last call (check-quorum). */
  takeActive(): ReadonlySet<string> {
    return this.#progress.takeActive();
  }

  /** The highest index a quorum of `config` has, this node counting for what it has `stored`. */
  quorumIndex(config: Config, stored: number, bug?: "joint-quorum-union"): number {
    return quorumIndex(config, (p) => p === this.#node.id ? stored : this.#progress.match(p), bug);
  }

  /** The leader appended `index`: each of `peers` gets it with the next Ready. */
  appended(peers: string[], index: number): void {
    for (const peer of peers) {
      this.#progress.next(peer, index); // a new leader's or a new member's first guess
      this.#unsent.add(peer);
    }
  }

  /** Sends what was appended since the last Ready, while `leading`: a burst of proposals costs one message a peer. */
  flush(leading: boolean): void {
    if (this.#unsent.size === 0) return;
    if (leading) { for (const peer of this.#unsent) this.send(peer, false); }
    this.#unsent.clear();
  }

  /**
   * An answer from `from`: true if it took the append, and then what it has counts; a rejection (a message lost, a
   * log that differs) starts again from what it says it has.
   */
  answered(from: string, success: boolean, index: number): void {
    this.#progress.heard(from);
    if (success) return this.#progress.acked(from, index);
    this.#progress.rejected(from, index);
    this.send(from, false);
  }

  /**
   * Sends `to` the entries not yet on their way to it, from past the last one sent (the transport keeps their
   * order), at most MAX_AHEAD entries past what `to` acknowledged. A heartbeat goes out even with no entries: one
   * after a lost message is rejected, and so recovers it. A peer that needs compacted entries gets the snapshot.
   */
  send(to: string, heartbeat: boolean): void {
    const node = this.#node;
    const next = this.#progress.next(to, node.lastIndex + 1);
    const round = node.readRound > 0 ? { round: node.readRound } : {};
    if (next <= this.#log.snapshotIndex) {
      const snapshot = node.latestSnapshot!;
      this.#progress.sentSnapshot(to, snapshot.index);
      this.#send({ type: "snapshot", from: node.id, to, term: node.term, snapshot, ...round });
      return;
    }
    for (let first = true;; first = false) {
      const from = Math.min(Math.max(next, this.#progress.sent(to) + 1), node.lastIndex + 1);
      const room = Math.min(next + MAX_AHEAD - from, this.#limits.maxBatch);
      const entries = room <= 0 || from > node.lastIndex
        ? []
        : limitBytes(this.#log.slice(from, from + room), this.#limits.maxBatchBytes);
      if (entries.length === 0 && !(heartbeat && first)) return;
      this.#send({
        type: "append",
        from: node.id,
        to,
        term: node.term,
        prevIndex: from - 1,
        prevTerm: node.termAt(from - 1),
        entries,
        commit: node.commit,
        ...round,
      });
      if (entries.length === 0) return;
      this.#progress.sentThrough(to, entries[entries.length - 1].index);
    }
  }
}
