import assert from "node:assert/strict";
import { Watchdog, type Watched } from "./watchdog.ts";

const guest = (): Watched => ({ flags: [new SharedArrayBuffer(64 * 1024)] });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("the watchdog fires a running call at its deadline, never one that ended, nor the next call early", async () => {
  const watchdog = new Watchdog();
  try {
    const running = guest();
    watchdog.arm(running, 20);
    const ended = guest();
    watchdog.arm(ended, 20)();
    // A reused instance: its first call ends, its second starts with a longer deadline on the same flags.
    const reused = guest();
    watchdog.register(reused);
    watchdog.arm(reused, 20)();
    const second = watchdog.arm(reused, 60_000);
    // The worker starts with the first clock (it may take a moment): wait for the running call's deadline to fire,
    // then a little longer for the other 20 ms clocks, armed after it.
    for (let i = 0; i < 250 && !Watchdog.fired(running.flags); i++) await wait(20);
    assert.ok(Watchdog.fired(running.flags), "the running call's deadline fired");
    await wait(100);
    assert.ok(!Watchdog.fired(ended.flags), "the ended call is left alone");
    assert.ok(!Watchdog.fired(reused.flags), "the first call's clock does not fire the second call");
    second();
    assert.ok(!Watchdog.fired(reused.flags));
  } finally {
    watchdog.close();
  }
});

/** Runs `body` with a watchdog whose thread is up, and closes it after. */
async function withWatchdog(body: (watchdog: Watchdog) => Promise<void>): Promise<void> {
  const watchdog = new Watchdog();
  try {
    await started(watchdog);
    await body(watchdog);
  } finally {
    watchdog.close();
  }
}

/** Waits for the watchdog's thread to be up: a call armed with no time left fires once it is. */
async function started(watchdog: Watchdog): Promise<void> {
  const first = guest();
  watchdog.arm(first, 0);
  while (!Watchdog.fired(first.flags)) await wait(5);
}

Deno.test("the watchdog wakes from its sleep for a call armed after a quiet spell, and fires it near its deadline", () =>
  withWatchdog(async (watchdog) => {
    await wait(100); // nothing armed: the worker sleeps
    for (let round = 0; round < 3; round++) {
      const g = guest();
      const armed = performance.now();
      watchdog.arm(g, 50);
      while (!Watchdog.fired(g.flags)) await wait(2);
      const late = performance.now() - armed - 50;
      assert.ok(late >= -2 && late < 200, `fired ${late.toFixed(1)} ms after its deadline`);
      await wait(100);
    }
  }));

Deno.test("a call stopped as its deadline fires is told so: its flags are set, whichever side won", () =>
  withWatchdog(async (watchdog) => {
    const g = guest();
    const stop = watchdog.arm(g, 0);
    await wait(100); // the worker fired it
    stop();
    assert.ok(Watchdog.fired(g.flags));
    // Many guests at once, each registered in its own slot.
    const many = Array.from({ length: 200 }, guest);
    const stops = many.map((m, i) => watchdog.arm(m, i % 2 === 0 ? 30 : 60_000));
    await wait(300);
    many.forEach((m, i) => assert.equal(Watchdog.fired(m.flags), i % 2 === 0, `guest ${i}`));
    for (const s of stops) s();
  }));

Deno.test("a dropped guest's slot goes to the next one made, which the old deadline never fires", () =>
  withWatchdog(async (watchdog) => {
    const first = guest();
    watchdog.register(first);
    const slot = first.slot;
    watchdog.arm(first, 30)(); // its call ended in time
    watchdog.release(first);
    assert.equal(first.slot, undefined);
    const next = guest();
    watchdog.register(next);
    assert.equal(next.slot, slot, "the slot is used again: slots do not grow with every instance made");
    const stop = watchdog.arm(next, 60_000);
    await wait(150);
    assert.ok(!Watchdog.fired(next.flags) && !Watchdog.fired(first.flags));
    stop();
  }));
