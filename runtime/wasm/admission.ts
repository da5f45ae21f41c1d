/**
 * Admission of one service's calls: at most `concurrency` run at once and at
 * most `queue` wait for a turn, first come first served. A call beyond that
 * is refused at once (`full`), and one that waits longer than its limit is
 * refused then (`waited`), so that under overload a service's throughput
 * levels off and clients learn at once to come back later, instead of every
 * call slowing down together until all of them miss their deadlines.
 */

import { Alarms } from "./alarms.ts";

/** Ends an admitted call: its turn goes to the next one waiting. Calling it again does nothing. */
export type Release = () => void;
/** Why a call was not admitted: the queue was full, it waited too long, or its client went away. */
export type Refusal = "full" | "waited" | "aborted";

interface Waiter {
  admit(release: Release): void;
  refuse(why: Refusal): void;
}

/**
 * How long a call waits before its client's going away is watched for. A client that leaves sooner is noticed when
 * the call's turn comes (its answer then goes nowhere); the queue's bound holds either way.
 */
export const WATCH_AFTER_MS = 50;

export class Admission {
  readonly concurrency: number;
  readonly queue: number;
  #running = 0;
  readonly #waiting = new Set<Waiter>();
  /** The waiting calls' deadlines and watches: one timer, cleared when none waits. */
  readonly #alarms = new Alarms({ clearWhenIdle: true });

  constructor(concurrency: number, queue: number) {
    this.concurrency = Math.max(1, Math.floor(concurrency));
    this.queue = Math.max(0, Math.floor(queue));
  }

  /** Calls admitted and not yet released. */
  get running(): number {
    return this.#running;
  }

  /** Calls waiting for a turn. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Admits a call now, or once a running one is released (waiting at most
   * `maxWaitMs`, and no longer than until `signal` aborts); settles with
   * its release, or with why it was refused. `signal` is asked for only when
   * the call must wait: Deno.serve makes a request's signal on demand, and
   * one made costs an abort (a DOMException) when the request ends.
   */
  enter(maxWaitMs: number, signal?: () => AbortSignal): Promise<Release | Refusal> {
    // Not `signal.aborted`: reading it makes Deno.serve warn about its legacy abort (a listener does not).
    if (this.#running < this.concurrency && this.#waiting.size === 0) return Promise.resolve(this.#admit());
    if (this.#waiting.size >= this.queue) return Promise.resolve("full");
    return new Promise((resolve) => {
      let abort: AbortSignal | undefined;
      const leave = (outcome: Release | Refusal) => {
        silence();
        unwatch?.();
        abort?.removeEventListener("abort", aborted);
        this.#waiting.delete(waiter);
        resolve(outcome);
      };
      const waiter: Waiter = { admit: leave, refuse: leave };
      const aborted = () => waiter.refuse("aborted");
      const silence = this.#alarms.arm(maxWaitMs, () => waiter.refuse("waited"));
      // The client's signal only for a call that is still waiting after WATCH_AFTER_MS: under load most waits are
      // shorter, and a request's signal, once made, costs Deno.serve a DOMException when the request ends.
      const unwatch = signal && this.#alarms.arm(WATCH_AFTER_MS, () => {
        abort = signal();
        abort.addEventListener("abort", aborted, { once: true });
      });
      this.#waiting.add(waiter);
    });
  }

  #admit(): Release {
    this.#running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      // A Set iterates in insertion order: the longest waiting goes first.
      const next = this.#waiting.values().next();
      if (!next.done && this.#running < this.concurrency) next.value.admit(this.#admit());
    };
  }
}

/**
 * Admits a call through two gates in turn: its service's, then the node's
 * (every service's calls in the guest hosts together), waiting at most
 * `maxWaitMs` in all. A call let through the first but not the second gives
 * its turn back.
 */
export async function enterBoth(
  service: Admission,
  node: Admission,
  maxWaitMs: number,
  signal?: () => AbortSignal,
): Promise<Release | Refusal> {
  const started = performance.now();
  const first = await service.enter(maxWaitMs, signal);
  if (typeof first === "string") return first;
  const second = await node.enter(Math.max(0, maxWaitMs - (performance.now() - started)), signal);
  if (typeof second === "string") {
    first();
    return second;
  }
  return () => {
    second();
    first();
  };
}

/** The answer to a call refused for `why`: 503 with Retry-After (seconds), at once. */
export function overloaded(service: string, why: Refusal, admission: Admission, retryAfterS: number): Response {
  const message = why === "full"
    ? `service ${service} is overloaded: ${admission.concurrency} calls run and ${admission.queue} wait; retry later`
    : `service ${service} is overloaded: the call waited its deadline for a turn; retry later`;
  return Response.json({ error: message, status: 503 }, {
    status: 503,
    headers: { "retry-after": String(retryAfterS) },
  });
}
