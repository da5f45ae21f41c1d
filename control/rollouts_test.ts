import assert from "node:assert/strict";
import type { Rollout } from "../config/mod.ts";
import { checkFigures } from "./cluster.ts";
import { judge, MIN_REQUESTS, wilsonLower } from "./rollouts.ts";

const rollout: Rollout = { strategy: "canary", canary_percent: 10, analysis_secs: 60, max_error_rate: 0.02 };
const canary = (requests: number, errors: number, p99Ms?: number, samples = requests) => ({
  requests,
  errors,
  samples,
  ...(p99Ms !== undefined && { p99Ms }),
});

Deno.test("the Wilson lower bound: near the rate with many requests, far below it with few", () => {
  assert.equal(wilsonLower(0, 0), 0);
  assert.equal(wilsonLower(0, 100), 0);
  assert.ok(wilsonLower(10, 20) > 0.29 && wilsonLower(10, 20) < 0.3);
  assert.ok(wilsonLower(1, 20) < 0.02, "one failure in 20 proves nothing against 2%");
  assert.ok(wilsonLower(500, 1000) > 0.46);
});

Deno.test("judge: rolled back as soon as the requests prove it; promoted at the end within the limits", () => {
  // Half failing: proven at its 20th request, not before.
  assert.equal(judge(rollout, canary(MIN_REQUESTS - 1, 10), 1000), undefined);
  const early = judge(rollout, canary(MIN_REQUESTS, 10), 1000);
  assert.equal(early?.outcome, "rolled_back");
  assert.match(early!.reason, /^10 of 20 requests failed \(50\.0%\), over max_error_rate 0.02$/);
  // One failure in 50 is not proof; at the end, 2% is within the limit, 3% is not.
  assert.equal(judge(rollout, canary(50, 1), 1000), undefined);
  assert.equal(judge(rollout, canary(100, 2), 60_000)?.outcome, "promoted");
  assert.equal(judge(rollout, canary(100, 3), 60_000)?.outcome, "rolled_back");
  assert.match(judge(rollout, canary(0, 0), 60_000)!.reason, /no request reached it/);
  // Latency: early only from 100 answers; at the end whatever the count.
  const slow = { ...rollout, max_p99_ms: 50 };
  assert.equal(judge(slow, canary(99, 0, 80), 1000), undefined);
  assert.match(judge(slow, canary(100, 0, 80), 1000)!.reason, /^p99 80 ms, over max_p99_ms 50$/);
  assert.equal(judge(slow, canary(10, 0, 80), 60_000)?.outcome, "rolled_back");
  assert.equal(judge(slow, canary(10, 0, 40), 60_000)?.outcome, "promoted");
});

Deno.test("figures another server sends are checked field by field; what is not a count is dropped", () => {
  assert.deepEqual(checkFigures({ "2": { requests: 30, errors: 12, samples: 30, p99Ms: 4.5 } }), {
    "2": { requests: 30, errors: 12, samples: 30, p99Ms: 4.5 },
  });
  for (const bad of [null, [], "x", 7]) assert.equal(checkFigures(bad), undefined);
  assert.deepEqual(
    checkFigures({
      "1": { requests: -1, errors: 0, samples: 0 },
      "2": { requests: 1.5, errors: 0, samples: 0 },
      "x": { requests: 1, errors: 0, samples: 1 },
      "3": { requests: 1, errors: 0, samples: 1, p99Ms: "fast" },
      "4": { requests: 1, errors: 0, samples: 1, p99Ms: Infinity },
      "5": { requests: 2, errors: 9, samples: 2 },
    }),
    { "5": { requests: 2, errors: 2, samples: 2 } },
  );
  const many = Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [String(i), { requests: 1, errors: 0, samples: 1 }]),
  );
  assert.equal(Object.keys(checkFigures(many)!).length, 16);
});
