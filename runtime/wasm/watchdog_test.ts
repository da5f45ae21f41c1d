import assert from "node:assert/strict";
import { Watchdog } from "./watchdog.ts";

const flag = () => new SharedArrayBuffer(64 * 1024);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("the watchdog fires a running call at its deadline, never one that ended, nor the next call early", async () => {
  const watchdog = new Watchdog();
  try {
    const running = [flag()];
    watchdog.arm(running, 20);
    const ended = [flag()];
    watchdog.arm(ended, 20)();
    // A reused instance: its first call ends, its second starts with a longer deadline on the same flags.
    const reused = [flag()];
    watchdog.arm(reused, 20)();
    const second = watchdog.arm(reused, 60_000);
    // The worker starts with the first clock (it may take a moment): wait for the running call's deadline to fire,
    // then a little longer for the other 20 ms clocks, armed after it.
    for (let i = 0; i < 250 && !Watchdog.fired(running); i++) await wait(20);
    assert.ok(Watchdog.fired(running), "the running call's deadline fired");
    await wait(100);
    assert.ok(!Watchdog.fired(ended), "the ended call is left alone");
    assert.ok(!Watchdog.fired(reused), "the first call's clock does not fire the second call");
    second();
  } finally {
    watchdog.close();
  }
});
