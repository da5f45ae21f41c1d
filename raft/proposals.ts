/**
 * The proposals a driver waits on, by log index: each is answered with what
 * the state machine made of its entry, or refused when another entry took its
 * place (a new leader's) or when it was not applied in time (outcome unknown).
 */

import { NotLeaderError, TimeoutError } from "./errors.ts";

interface Waiting<R> {
  resolve: (value: R) => void;
  reject: (err: Error) => void;
  /** The term it was proposed in: an entry of another term at its index means it was lost. */
  term: number;
  deadline: number;
}

export class Proposals<R> {
  readonly #waiting = new Map<number, Waiting<R>>();
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Waits for the entry proposed at `index` in `term`. One proposed there in an earlier term was replaced. */
  wait(index: number, term: number, leader: string | undefined): Promise<R> {
    this.#waiting.get(index)?.reject(new NotLeaderError(leader, `entry ${index} was replaced`));
    this.#waiting.delete(index);
    const deadline = performance.now() + this.#timeoutMs;
    return new Promise((resolve, reject) => this.#waiting.set(index, { resolve, reject, term, deadline }));
  }

  /** Gives up on those past their deadline at `now`. */
  expire(now: number): void {
    for (const [index, w] of this.#waiting) {
      if (w.deadline > now) break; // in index order, so in deadline order
      this.#waiting.delete(index);
      w.reject(new TimeoutError(`entry ${index} not applied in time; it may still be`));
    }
  }

  /** Answers those up to `index`: the one there with its result if the entry applied is the one proposed. */
  settle(index: number, applied: { term: number; result: R } | undefined, leader: string | undefined): void {
    for (const [i, w] of this.#waiting) {
      if (i > index) break;
      this.#waiting.delete(i);
      if (i === index && applied?.term === w.term) w.resolve(applied.result);
      else w.reject(new NotLeaderError(leader, `entry ${i} was replaced by another leader's`));
    }
  }

  failAll(err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}
