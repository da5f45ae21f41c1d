/**
 * The time upstream requests have for their answers' heads. One timer looks at all of them every `SWEEP_MS` (none
 * runs while none waits): a timer per request cost more than the rest of the client's bookkeeping.
 */

import { UpstreamError } from "./h1_head.ts";

/** A request's time for its answer's head: closing the connection ends whatever waits on it. */
export class Deadline {
  expired = false;
  /** The connection it waits on: closed when the time is up. */
  conn?: { close(): void };
  readonly at: number;
  readonly #ms: number;
  readonly #all: Deadlines;
  #reject?: (err: Error) => void;

  constructor(ms: number, all: Deadlines) {
    this.#ms = ms;
    this.at = performance.now() + ms;
    this.#all = all;
    all.add(this);
  }

  fire(): void {
    this.expired = true;
    this.conn?.close();
    this.#reject?.(this.error());
  }

  error(): UpstreamError {
    return new UpstreamError("timeout", `no answer within ${this.#ms / 1000} s`);
  }

  /** `connecting`, or the deadline's error first (a connection made after it is closed). */
  race<C extends { close(): void }>(connecting: Promise<C>): Promise<C> {
    return new Promise((resolve, reject) => {
      this.#reject = reject;
      connecting.then((conn) => {
        if (this.expired) conn.close();
        else resolve(conn);
      }, reject);
    });
  }

  clear(): void {
    this.#all.delete(this);
  }
}

/** How often deadlines are looked at: a request's head may come up to this much past its time before it is cut. */
const SWEEP_MS = 50;

/** The deadlines of requests under way, looked at every `SWEEP_MS` (one timer for all, none while there are none). */
export class Deadlines {
  readonly #due = new Set<Deadline>();
  #timer?: ReturnType<typeof setInterval>;

  add(deadline: Deadline): void {
    this.#due.add(deadline);
    if (this.#timer !== undefined) return;
    const timer = setInterval(() => this.#sweep(), SWEEP_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  delete(deadline: Deadline): void {
    this.#due.delete(deadline);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sweep(): void {
    const now = performance.now();
    for (const deadline of this.#due) {
      if (now < deadline.at) continue;
      this.#due.delete(deadline);
      deadline.fire();
    }
    if (this.#due.size === 0) this.stop();
  }
}
