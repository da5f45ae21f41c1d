/**
 * ReadIndex on a leader: a read is answered at the commit index it started
 * at, but only once a quorum has confirmed, by answering a round of
 * heartbeats sent after it started, that this node still leads. A follower's
 * read (etcd's MsgReadIndex) takes the same round on the leader; its answer
 * goes back to the follower (`from`), which serves it once it has applied
 * that index.
 */

import type { Outbox } from "./outbox.ts";

export class ReadIndex {
  /** Oldest first. */
  #pending: { ctx: string; index: number; from: string; round: number; acks: Set<string> }[] = [];
  #round = 0;
  readonly #self: string;
  readonly #outbox: Outbox;

  constructor(self: string, outbox: Outbox) {
    this.#self = self;
    this.#outbox = outbox;
  }

  /** The round the next heartbeats carry (0 until a read starts). */
  get round(): number {
    return this.#round;
  }

  /** Read `ctx`, asked by `from` (this node or a follower), is answered at `index` once confirmed. */
  start(ctx: string, index: number, from: string): void {
    this.#pending.push({ ctx, index, from, round: ++this.#round, acks: new Set([this.#self]) });
  }

  /** `from` answered a message of round `round`: it confirms every read started by then. */
  ack(from: string, round: number): void {
    for (const r of this.#pending) if (r.round <= round) r.acks.add(from);
  }

  /**
   * Releases the reads confirmed so far, in order (a read never overtakes an older one): this node's to its
   * driver (`Ready.reads`), a follower's in an answer to that follower, sent as leader of `term`.
   */
  release(term: number, confirmed: (acks: ReadonlySet<string>) => boolean): void {
    let n = 0;
    while (n < this.#pending.length && confirmed(this.#pending[n].acks)) n++;
    for (const { ctx, index, from } of this.#pending.splice(0, n)) {
      if (from === this.#self) this.#outbox.reads.push({ ctx, index });
      else this.#outbox.messages.push({ type: "read-index-response", from: this.#self, to: from, term, ctx, index });
    }
  }

  /** Deposed: nothing pending will be confirmed (the clients, and followers, ask again). */
  clear(): void {
    this.#pending = [];
  }
}
