/**
 * Deadlines for guest calls. A worker thread (watchdog_worker.ts) watches
 * the clocks, so a guest spinning on the main thread is still interrupted:
 * the worker sets the guest's flags and the guest traps at its next check
 * (see instrument.ts).
 *
 * Nothing is sent to the worker per call. Each guest instance is registered
 * once (its flags, in a slot, when it is made: off the request path, and the
 * slot given back when it is dropped), and a call's clock is two stores into
 * memory shared with the worker: the slot's deadline and the call's id. The
 * worker scans the armed slots every few milliseconds while any is armed, and
 * sleeps on a shared word while none is; an arm wakes it only then.
 */

import { OrcaError } from "../../errors.ts";

/** Most guest instances watched at once (each holds at least a 64 KiB memory: far past any real load). */
const SLOTS = 65536;
/** ctl words: a counter bumped by every arm, whether the worker sleeps, and how many slots have been used. */
const SEQ = 0, PARKED = 1, HIGH = 2;

/** What the watchdog watches: a guest's interrupt flags, and the slot they were registered in. */
export interface Watched {
  flags: readonly SharedArrayBuffer[];
  slot?: number;
}

/** Milliseconds since `epoch`, on a clock both threads read alike (timeOrigin is per thread; their sum is not). */
function elapsed(epoch: number): number {
  return Math.round(performance.timeOrigin + performance.now() - epoch);
}

export class Watchdog {
  #worker?: Worker;
  readonly #epoch = performance.timeOrigin + performance.now();
  readonly #ctl = new Int32Array(new SharedArrayBuffer(16));
  /** Per slot: the armed call's id (0: not armed), its deadline (ms since epoch), the registration's generation. */
  readonly #calls = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  readonly #deadlines = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  readonly #gens = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  readonly #free: number[] = [];
  #nextCall = 1;

  /** Registers a guest's flags (once; arm does it if this was not called). */
  register(target: Watched): void {
    if (target.slot !== undefined || target.flags.length === 0) return;
    const slot = this.#free.pop() ?? Atomics.add(this.#ctl, HIGH, 1);
    if (slot >= SLOTS) {
      Atomics.sub(this.#ctl, HIGH, 1);
      throw new OrcaError("unavailable", `more than ${SLOTS} guest instances at once on this host`);
    }
    const gen = Atomics.add(this.#gens, slot, 1) + 1;
    this.#start().postMessage({ op: "register", slot, gen, flags: target.flags });
    target.slot = slot;
  }

  /**
   * Gives a guest's slot back, for one made later: once the guest will not be called again (its call has ended). The
   * worker drops what it held for the slot when it is registered anew.
   */
  release(target: Watched): void {
    if (target.slot === undefined) return;
    Atomics.store(this.#calls, target.slot, 0);
    Atomics.add(this.#gens, target.slot, 1);
    this.#free.push(target.slot);
    target.slot = undefined;
  }

  /**
   * Starts the clock on a call; the returned function stops it. One that stops it too late (the worker had fired)
   * sets the flags itself, so that `fired` says so at once.
   */
  arm(target: Watched, timeoutMs: number): () => void {
    if (target.flags.length === 0) return () => {};
    this.register(target);
    const slot = target.slot!;
    const id = this.#nextCall = (this.#nextCall % 0x7fffffff) + 1;
    Atomics.store(this.#deadlines, slot, elapsed(this.#epoch) + Math.max(0, Math.ceil(timeoutMs)));
    Atomics.store(this.#calls, slot, id);
    Atomics.add(this.#ctl, SEQ, 1);
    if (Atomics.load(this.#ctl, PARKED) === 1) Atomics.notify(this.#ctl, SEQ);
    return () => {
      if (Atomics.compareExchange(this.#calls, slot, id, 0) !== id) Watchdog.fire(target.flags);
    };
  }

  /** Sets the flags now: the guest traps at its next check. */
  static fire(flags: readonly SharedArrayBuffer[]): void {
    for (const flag of flags) Atomics.store(new Int32Array(flag), 0, 1);
  }

  /** Whether any of these flags was set (the deadline passed). */
  static fired(flags: readonly SharedArrayBuffer[]): boolean {
    return flags.some((f) => Atomics.load(new Int32Array(f), 0) !== 0);
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    this.#worker = new Worker(new URL("./watchdog_worker.ts", import.meta.url), { type: "module" });
    this.#worker.postMessage({
      op: "init",
      epoch: this.#epoch,
      ctl: this.#ctl.buffer,
      calls: this.#calls.buffer,
      deadlines: this.#deadlines.buffer,
      gens: this.#gens.buffer,
    });
    return this.#worker;
  }
}
