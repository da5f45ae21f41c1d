import assert from "node:assert/strict";
import { type CronSchedule, parseCron } from "../config/mod.ts";
import { nextFire } from "./cron.ts";

function schedule(text: string): CronSchedule {
  const s = parseCron(text);
  if ("error" in s) throw new Error(s.error);
  return s;
}

/** The next `n` firings after `from`, as ISO strings. */
function fires(text: string, from: string, n = 3): string[] {
  const s = schedule(text);
  const out: string[] = [];
  let t = Date.parse(from);
  for (let i = 0; i < n; i++) {
    t = nextFire(s, t)!;
    out.push(new Date(t).toISOString());
  }
  return out;
}

Deno.test("5-field schedules: steps, ranges, lists, names", () => {
  assert.deepEqual(fires("*/15 * * * *", "2026-01-01T00:07:00Z"), [
    "2026-01-01T00:15:00.000Z",
    "2026-01-01T00:30:00.000Z",
    "2026-01-01T00:45:00.000Z",
  ]);
  assert.deepEqual(fires("0 9-10 * * mon-fri", "2026-11-20T09:30:00Z"), [
    "2026-11-20T10:00:00.000Z",
    "2026-11-23T09:00:00.000Z",
    "2026-11-23T10:00:00.000Z",
  ]);
  assert.deepEqual(fires("30 8 1,15 JAN,jul *", "2026-01-10T00:00:00Z"), [
    "2026-01-15T08:30:00.000Z",
    "2026-07-01T08:30:00.000Z",
    "2026-07-15T08:30:00.000Z",
  ]);
  assert.deepEqual(fires("0 0 * * 7", "2026-11-22T00:00:00Z", 1), ["2026-11-29T00:00:00.000Z"]);
});

Deno.test("6-field schedules fire on seconds", () => {
  assert.deepEqual(fires("* * * * * *", "2026-01-01T00:00:00.500Z"), [
    "2026-01-01T00:00:01.000Z",
    "2026-01-01T00:00:02.000Z",
    "2026-01-01T00:00:03.000Z",
  ]);
  assert.deepEqual(fires("*/20 0 12 * * *", "2026-01-01T11:59:59Z"), [
    "2026-01-01T12:00:00.000Z",
    "2026-01-01T12:00:20.000Z",
    "2026-01-01T12:00:40.000Z",
  ]);
});

Deno.test("macros and the day-of-month OR day-of-week rule", () => {
  assert.deepEqual(fires("@hourly", "2026-01-01T10:15:00Z", 2), [
    "2026-01-01T11:00:00.000Z",
    "2026-01-01T12:00:00.000Z",
  ]);
  assert.deepEqual(fires("@yearly", "2026-06-01T00:00:00Z", 1), ["2027-01-01T00:00:00.000Z"]);
  // Both restricted: the 13th OR a Friday.
  assert.deepEqual(fires("0 0 13 * fri", "2026-11-10T00:00:00Z", 3), [
    "2026-11-13T00:00:00.000Z",
    "2026-11-20T00:00:00.000Z",
    "2026-11-27T00:00:00.000Z",
  ]);
});

Deno.test("leap day", () => {
  assert.deepEqual(fires("0 12 29 2 *", "2026-03-01T00:00:00Z", 2), [
    "2028-02-29T12:00:00.000Z",
    "2032-02-29T12:00:00.000Z",
  ]);
});

Deno.test("time zones and DST in Europe/Berlin", () => {
  // 09:00 Berlin is 08:00Z in winter, 07:00Z in summer.
  assert.deepEqual(fires("0 9 * * * Europe/Berlin", "2026-03-27T12:00:00Z"), [
    "2026-03-28T08:00:00.000Z",
    "2026-03-29T07:00:00.000Z",
    "2026-03-30T07:00:00.000Z",
  ]);
  // Spring forward 2026-03-29: 02:30 does not exist that day and is skipped.
  assert.deepEqual(fires("30 2 * * * Europe/Berlin", "2026-03-28T00:00:00Z"), [
    "2026-03-28T01:30:00.000Z",
    "2026-03-30T00:30:00.000Z",
    "2026-03-31T00:30:00.000Z",
  ]);
  // Fall back 2026-10-25: 02:30 happens twice; a fixed-hour job fires once.
  assert.deepEqual(fires("30 2 * * * Europe/Berlin", "2026-10-24T12:00:00Z"), [
    "2026-10-25T00:30:00.000Z",
    "2026-10-26T01:30:00.000Z",
    "2026-10-27T01:30:00.000Z",
  ]);
  // ...while an every-hour job fires in both 02:xx hours.
  assert.deepEqual(fires("30 * * * * Europe/Berlin", "2026-10-25T00:00:00Z", 3), [
    "2026-10-25T00:30:00.000Z",
    "2026-10-25T01:30:00.000Z",
    "2026-10-25T02:30:00.000Z",
  ]);
  // Every minute across the spring-forward gap: 01:59 local then 03:00 local.
  assert.deepEqual(fires("* * * * * Europe/Berlin", "2026-03-29T00:58:30Z", 2), [
    "2026-03-29T00:59:00.000Z",
    "2026-03-29T01:00:00.000Z",
  ]);
});

Deno.test("bad schedules name the field at fault", () => {
  const err = (text: string) => {
    const s = parseCron(text);
    assert.ok("error" in s, `expected an error for ${text}`);
    return s.error;
  };
  assert.match(err("61 * * * *"), /^minute field: "61" is out of range 0-59/);
  assert.match(err("0 25 * * *"), /^hour field/);
  assert.match(err("0 0 0 * *"), /^day-of-month field/);
  assert.match(err("0 0 * 13 *"), /^month field/);
  assert.match(err("0 0 * * 8"), /^day-of-week field/);
  assert.match(err("0 0 * * funday"), /^day-of-week field: "funday" is not a number or name/);
  assert.match(err("*/0 * * * *"), /^minute field: step/);
  assert.match(err("5-1 * * * *"), /goes backwards/);
  assert.match(err("* * *"), /5 fields .* or 6/);
  assert.match(err("@sometimes"), /unknown macro/);
  assert.match(err("0 9 * * * Mars/Olympus"), /unknown time zone/);
  assert.match(err("0 0 31 2 *"), /never fires/);
});
