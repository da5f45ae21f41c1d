/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

/**
 * The watchdog's own thread: it sets a guest's interrupt flags when the
 * guest's deadline passes, even while the main thread is stuck in that guest.
 */

interface Arm {
  op: "arm";
  id: number;
  flags: SharedArrayBuffer[];
  /** Milliseconds from now. */
  after: number;
}

interface Disarm {
  op: "disarm";
  id: number;
}

const timers = new Map<number, ReturnType<typeof setTimeout>>();

self.onmessage = (event: MessageEvent<Arm | Disarm>) => {
  const m = event.data;
  if (m.op === "arm") {
    timers.set(
      m.id,
      setTimeout(() => {
        timers.delete(m.id);
        for (const flag of m.flags) Atomics.store(new Int32Array(flag), 0, 1);
      }, m.after),
    );
  } else {
    clearTimeout(timers.get(m.id));
    timers.delete(m.id);
  }
};
