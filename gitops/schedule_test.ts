import assert from "node:assert/strict";
import { MAX_BACKOFF_MS, nextDelay } from "./schedule.ts";

Deno.test("polls back off: the interval doubled per consecutive failure, five minutes at most, reset by a success", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((f) => nextDelay(5000, f)), [5000, 10_000, 20_000, 40_000, 80_000]);
  assert.equal(nextDelay(5000, 7), MAX_BACKOFF_MS);
  assert.equal(nextDelay(5000, 10_000), MAX_BACKOFF_MS); // no overflow to Infinity or NaN
  assert.equal(nextDelay(500, 1), 1000);
  // An interval above the cap: a failure is retried within the cap, never later than the interval.
  assert.equal(nextDelay(3_600_000, 1), MAX_BACKOFF_MS);
  assert.equal(nextDelay(3_600_000, 0), 3_600_000);
});
