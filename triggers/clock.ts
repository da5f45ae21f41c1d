/** Time for the dispatchers, injected so tests never sleep. */

export interface Clock {
  now(): number;
  /** Resolves at `at` (ms since epoch), or early when `signal` aborts. */
  sleepUntil(at: number, signal?: AbortSignal): Promise<void>;
}

const MAX_TIMER = 2 ** 31 - 1;

/** The real clock: Date.now and setTimeout (re-armed for waits past ~24 days). */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleepUntil(at, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        const wait = at - Date.now();
        if (wait <= 0) return done();
        timer = setTimeout(arm, Math.min(wait, MAX_TIMER));
      };
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      signal?.addEventListener("abort", done, { once: true });
      arm();
    });
  },
};

/** A clock that moves only when told to: `advance` wakes sleepers in time order. */
export class ManualClock implements Clock {
  #now: number;
  #sleepers: { at: number; wake: () => void }[] = [];

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
    if (at <= this.#now || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper = { at, wake: resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward by `ms`, waking each sleeper at its time and letting it run. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await flush();
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > end) break;
      this.#sleepers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.wake();
    }
    this.#now = end;
    await flush();
  }
}

/** Lets pending promise callbacks run (many microtask turns, for chains of awaits). */
async function flush(): Promise<void> {
  for (let i = 0; i < 200; i++) await Promise.resolve();
}
