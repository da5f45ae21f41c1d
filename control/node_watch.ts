/**
 * The leader's watch over the nodes. A node it has not heard from for the
 * node timeout (default 30 s, `orca server --node-timeout-secs`) is
 * unhealthy: the scheduler moves its replicas elsewhere and gives it no new
 * ones until it answers again. A server that has just become the leader has
 * heard from nobody yet: every node gets the whole timeout from then.
 */

export interface NodeWatchOptions {
  /** This server's node id (always healthy to itself). */
  self: string;
  /** Milliseconds since `node` was last heard from; undefined if never. */
  sinceHeard(node: string): number | undefined;
  isLeader(): boolean;
  timeoutMs: number;
  /** Milliseconds, monotonic. */
  now?: () => number;
}

export class NodeWatch {
  readonly #opts: NodeWatchOptions;
  readonly #now: () => number;
  #leaderSince?: number;

  constructor(opts: NodeWatchOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Notes whether this server leads now (call it often: each call may start or end the grace of a new leader). */
  tick(): void {
    if (!this.#opts.isLeader()) this.#leaderSince = undefined;
    else this.#leaderSince ??= this.#now();
  }

  healthy(node: string): boolean {
    this.tick(); // a deploy in a new leader's first moments gets the grace too
    const { self, sinceHeard, timeoutMs } = this.#opts;
    if (node === self) return true;
    const since = sinceHeard(node);
    if (since !== undefined && since < timeoutMs) return true;
    return this.#leaderSince !== undefined && this.#now() - this.#leaderSince < timeoutMs;
  }
}
