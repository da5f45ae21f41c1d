/**
 * Linearizable reads as the driver waits for them (ReadIndex, the Raft
 * thesis 6.4): a read asks the core for the index the cluster had committed
 * when it was asked (a leader confirms it still leads with a heartbeat round;
 * a follower asks its leader), then waits until this node has applied
 * through it. Reads that take too long are given up.
 */

import type { RaftNode } from "./core.ts";
import { NotLeaderError, TimeoutError } from "./errors.ts";

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  deadline: number;
}

export interface ReadBarriersOptions {
  node: () => RaftNode;
  /** Runs the driver's loop soon (the core has a read request to send). */
  schedule: () => void;
  /** How long a follower waits for its leader's answer before asking again. */
  retryMs: number;
  timeoutMs: number;
  random: () => number;
}

export class ReadBarriers {
  /** Reads this node answered while following (with the leader's read index). */
  followerReads = 0;
  readonly #opts: ReadBarriersOptions;
  /** Reads waiting for their read index, by context (`retryAt`: when to ask again); then for it to be applied. */
  readonly #asked = new Map<string, Waiter & { retryAt: number }>();
  #confirmed: { index: number; waiter: Waiter }[] = [];
  /** Read contexts are unique to this run: an answer to a read of an earlier run must match none. */
  readonly #prefix: string;
  #seq = 0;

  constructor(opts: ReadBarriersOptions) {
    this.#opts = opts;
    this.#prefix = Math.floor(opts.random() * 2 ** 52).toString(36);
  }

  /** Resolves once this node has applied what the cluster had committed at the call. */
  begin(): Promise<void> {
    const ctx = `${this.#prefix}.${++this.#seq}`;
    return new Promise((resolve, reject) => {
      this.#asked.set(ctx, { resolve, reject, deadline: performance.now() + this.#opts.timeoutMs, retryAt: 0 });
      this.#ask(ctx);
    });
  }

  /** The read indexes a Ready confirmed: those reads now wait to be applied. */
  confirmed(reads: readonly { ctx: string; index: number }[]): void {
    for (const r of reads) {
      const waiter = this.#asked.get(r.ctx);
      this.#asked.delete(r.ctx);
      if (waiter) this.#confirmed.push({ index: r.index, waiter });
    }
  }

  /** Resolves the reads whose index this node has applied. */
  answer(applied: number): void {
    if (!this.#confirmed.some((c) => c.index <= applied)) return;
    const ready = this.#confirmed.filter((c) => c.index <= applied);
    this.#confirmed = this.#confirmed.filter((c) => c.index > applied);
    if (this.#opts.node().role !== "leader") this.followerReads += ready.length;
    for (const c of ready) c.waiter.resolve();
  }

  /** Gives up the reads past their deadline; asks again for those whose answer is late. */
  tick(now: number): void {
    for (const [ctx, w] of this.#asked) {
      if (w.deadline <= now) {
        this.#asked.delete(ctx);
        w.reject(new TimeoutError("read not confirmed in time"));
      } else if (w.retryAt <= now) this.#ask(ctx);
    }
    const late = this.#confirmed.filter((c) => c.waiter.deadline <= now);
    this.#confirmed = this.#confirmed.filter((c) => c.waiter.deadline > now);
    for (const c of late) c.waiter.reject(new TimeoutError("read index not applied in time"));
  }

  /** This node was deposed: the reads it was confirming never will be; they ask the new leader at the next tick. */
  deposed(): void {
    for (const w of this.#asked.values()) w.retryAt = 0;
  }

  failAll(err: Error): void {
    for (const w of this.#asked.values()) w.reject(err);
    for (const c of this.#confirmed) c.waiter.reject(err);
    this.#asked.clear();
    this.#confirmed = [];
  }

  /**
   * Asks the core for the read index. A leader waits until it has committed an entry of its term (its first no-op):
   * it tries again at the next tick. A follower asks its leader, and again every election timeout until answered
   * (the request or the answer may be lost, or the leader deposed); knowing no leader, it gives up.
   */
  #ask(ctx: string): void {
    const w = this.#asked.get(ctx);
    if (!w) return;
    const node = this.#opts.node();
    const leading = node.role === "leader";
    if (node.readIndex(ctx)) {
      w.retryAt = leading ? Infinity : performance.now() + this.#opts.retryMs;
      this.#opts.schedule();
    } else if (leading) w.retryAt = 0;
    else {
      this.#asked.delete(ctx);
      w.reject(new NotLeaderError(undefined, "no leader known"));
    }
  }
}
