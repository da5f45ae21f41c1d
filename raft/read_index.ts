/**
 * ReadIndex on a leader: a read is answered at the commit index it started
 * at, but only once a quorum has confirmed, by answering a round of
 * heartbeats sent after it started, that this node still leads.
 */

export class ReadIndex {
  /** Oldest first. */
  #pending: { ctx: string; index: number; round: number; acks: Set<string> }[] = [];
  #round = 0;

  /** The round the next heartbeats carry (0 until a read starts). */
  get round(): number {
    return this.#round;
  }

  start(ctx: string, index: number, self: string): void {
    this.#pending.push({ ctx, index, round: ++this.#round, acks: new Set([self]) });
  }

  /** `from` answered a message of round `round`: it confirms every read started by then. */
  ack(from: string, round: number): void {
    for (const r of this.#pending) if (r.round <= round) r.acks.add(from);
  }

  /** Takes out the reads confirmed so far, in order (a read never overtakes an older one). */
  release(confirmed: (acks: ReadonlySet<string>) => boolean): { ctx: string; index: number }[] {
    let n = 0;
    while (n < this.#pending.length && confirmed(this.#pending[n].acks)) n++;
    return this.#pending.splice(0, n).map((r) => ({ ctx: r.ctx, index: r.index }));
  }

  /** Deposed: nothing pending will be confirmed (the clients ask again). */
  clear(): void {
    this.#pending = [];
  }
}
