import assert from "node:assert/strict";
import { Alarms } from "./alarms.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("alarms fire at their deadlines, in order, and never one that was disarmed", async () => {
  const alarms = new Alarms();
  const fired: string[] = [];
  const t0 = performance.now();
  const at: Record<string, number> = {};
  const mark = (name: string) => () => {
    fired.push(name);
    at[name] = performance.now() - t0;
  };
  alarms.arm(120, mark("late"));
  alarms.arm(40, mark("early")); // earlier than the timer set for "late": the timer moves
  const silence = alarms.arm(80, mark("disarmed"));
  silence();
  silence(); // twice does nothing
  assert.equal(alarms.size, 2);
  await sleep(200);
  assert.deepEqual(fired, ["early", "late"]);
  assert.ok(at.early >= 39 && at.early < 110, `early at ${at.early} ms`);
  assert.ok(at.late >= 119, `late at ${at.late} ms`);
  assert.equal(alarms.size, 0);
});

Deno.test("disarmed alarms never fire, and close leaves no timer behind", async () => {
  const alarms = new Alarms();
  let fired = 0;
  const silences = Array.from({ length: 1000 }, (_, i) => alarms.arm(5 + (i % 20), () => fired++));
  for (const silence of silences) silence();
  assert.equal(alarms.size, 0);
  await sleep(40); // the timer rings once, for nothing
  assert.equal(fired, 0);
  alarms.arm(5, () => fired++);
  alarms.close();
  await sleep(30);
  assert.equal(fired, 0);
  // The test sanitizer fails this test if a timer were still pending.
});

Deno.test("an alarm armed from another alarm's callback fires too", async () => {
  const alarms = new Alarms();
  const fired: number[] = [];
  alarms.arm(10, () => {
    fired.push(1);
    alarms.arm(10, () => fired.push(2));
  });
  await sleep(80);
  assert.deepEqual(fired, [1, 2]);
});

Deno.test("alarms made to clear when idle hold no timer once the last one is disarmed", () => {
  const alarms = new Alarms({ clearWhenIdle: true });
  let fired = 0;
  const a = alarms.arm(50, () => fired++);
  const b = alarms.arm(20, () => fired++);
  b();
  a();
  assert.equal(alarms.size, 0);
  assert.equal(fired, 0);
  // No close: the test sanitizer fails this test if a timer were still pending.
});
