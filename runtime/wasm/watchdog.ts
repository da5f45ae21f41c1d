/**
 * Deadlines for guest calls. A worker thread (watchdog_worker.ts) owns the
 * timers, so a guest spinning on the main thread is still interrupted: the
 * worker sets the guest's flags and the guest traps at its next check (see
 * instrument.ts).
 */

export class Watchdog {
  #worker?: Worker;
  #next = 1;

  /** Starts the clock on a call; the returned function stops it. */
  arm(flags: readonly SharedArrayBuffer[], timeoutMs: number): () => void {
    if (flags.length === 0) return () => {};
    this.#worker ??= new Worker(new URL("./watchdog_worker.ts", import.meta.url), { type: "module" });
    const id = this.#next++;
    this.#worker.postMessage({ op: "arm", id, flags, after: timeoutMs });
    return () => this.#worker?.postMessage({ op: "disarm", id });
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
}
