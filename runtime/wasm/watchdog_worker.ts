/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

/**
 * The watchdog's own thread (see watchdog.ts): it sets a guest's interrupt
 * flags when its call's deadline passes, even while the main thread is stuck
 * in that guest. It scans the armed slots every TICK_MS while any is armed,
 * and otherwise sleeps until an arm wakes it.
 */

interface Init {
  op: "init";
  epoch: number;
  ctl: SharedArrayBuffer;
  calls: SharedArrayBuffer;
  deadlines: SharedArrayBuffer;
  gens: SharedArrayBuffer;
}

interface Register {
  op: "register";
  slot: number;
  gen: number;
  flags: SharedArrayBuffer[];
}

/** How late past its deadline a spinning guest may be stopped, at most (plus the time to its next check). */
const TICK_MS = 5;
const SEQ = 0, PARKED = 1, HIGH = 2;

/** As watchdog.ts reads it (this thread imports nothing, to start fast). */
const elapsed = (epoch: number) => Math.round(performance.timeOrigin + performance.now() - epoch);

const registered = new Map<number, { gen: number; flags: Int32Array[] }>();

self.onmessage = (event: MessageEvent<Init | Register>) => {
  const m = event.data;
  if (m.op === "init") {
    watch(m);
  } else {
    registered.set(m.slot, { gen: m.gen, flags: m.flags.map((f) => new Int32Array(f)) });
  }
};

async function watch(m: Init): Promise<void> {
  const ctl = new Int32Array(m.ctl);
  const calls = new Int32Array(m.calls);
  const deadlines = new Int32Array(m.deadlines);
  const gens = new Int32Array(m.gens);
  for (;;) {
    const seq = Atomics.load(ctl, SEQ);
    const now = elapsed(m.epoch);
    const high = Atomics.load(ctl, HIGH);
    let armed = false;
    for (let slot = 0; slot < high; slot++) {
      const call = Atomics.load(calls, slot);
      if (call === 0) continue;
      armed = true;
      if (Atomics.load(deadlines, slot) > now) continue;
      // Its registration may still be on its way: the next scan fires it.
      const reg = registered.get(slot);
      if (!reg || reg.gen !== Atomics.load(gens, slot)) continue;
      // The call may end as we look: only the side whose exchange succeeds acts.
      if (Atomics.compareExchange(calls, slot, call, 0) === call) {
        for (const flag of reg.flags) Atomics.store(flag, 0, 1);
      }
    }
    if (armed) {
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
      continue;
    }
    // Nothing armed: sleep until an arm bumps the counter. Said before the last look, so that an arm made meanwhile
    // is either seen by that look or notifies.
    Atomics.store(ctl, PARKED, 1);
    if (Atomics.load(ctl, SEQ) === seq) {
      const wait = Atomics.waitAsync(ctl, SEQ, seq);
      if (wait.async) await wait.value;
    }
    Atomics.store(ctl, PARKED, 0);
    // Messages (registrations) queued while waiting are handled before the next scan.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
