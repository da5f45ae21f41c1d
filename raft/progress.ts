/**
 * A leader's view of its followers: how far each is known to hold the log
 * (match), where to send from next, and who answered lately (check-quorum).
 */

export class Progress {
  readonly #next = new Map<string, number>();
  readonly #match = new Map<string, number>();
  /** The last index sent ahead of an acknowledgement (appends are pipelined); none after a rejection. */
  readonly #sent = new Map<string, number>();
  #active = new Set<string>();

  /** A new term as leader: nothing is known. */
  reset(): void {
    this.#next.clear();
    this.#match.clear();
    this.#sent.clear();
    this.#active.clear();
  }

  /** Where to send `peer` entries from; `guess` the first time. */
  next(peer: string, guess: number): number {
    if (!this.#next.has(peer)) this.#next.set(peer, guess);
    return this.#next.get(peer)!;
  }

  match(peer: string): number {
    return this.#match.get(peer) ?? 0;
  }

  /** The last index sent to `peer` (0: none since the last rejection). */
  sent(peer: string): number {
    return this.#sent.get(peer) ?? 0;
  }

  /** Entries through `index` are on their way to `peer`. */
  sentThrough(peer: string, index: number): void {
    this.#sent.set(peer, index);
  }

  /** `peer` holds the log through `index`. */
  acked(peer: string, index: number): void {
    if (index > this.match(peer)) this.#match.set(peer, index);
    this.#next.set(peer, Math.max(this.#next.get(peer) ?? 1, index + 1));
  }

  /** `peer` lacks the entry before where it was sent from: back off to after `hint`, and at least by one. */
  rejected(peer: string, hint: number): void {
    this.#sent.delete(peer); // what was on its way may be lost: send again from `next`
    this.#next.set(peer, Math.max(1, Math.min((this.#next.get(peer) ?? 1) - 1, hint + 1)));
  }

  /** `peer` was sent a snapshot through `index`: go on from after it (a loss shows as a rejection). */
  sentSnapshot(peer: string, index: number): void {
    this.#next.set(peer, index + 1);
    this.#sent.set(peer, index);
  }

  heard(peer: string): void {
    this.#active.add(peer);
  }

  /** Who answered since the last call. */
  takeActive(): ReadonlySet<string> {
    const active = this.#active;
    this.#active = new Set();
    return active;
  }
}
