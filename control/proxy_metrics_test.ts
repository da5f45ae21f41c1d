import assert from "node:assert/strict";
import { Counter, Histogram, Registry } from "prom-client";
import { ProxyMetrics } from "./proxy_metrics.ts";

const BOUNDS = [0.001, 0.01, 0.1, 1];
const requests: [string, string] = ["t_requests_total", "Requests."];
const latency: [string, string] = ["t_duration_seconds", "Latency."];

Deno.test("proxy metrics read exactly as prom-client's own counter and histogram would, for the same answers", async () => {
  const ours = new Registry();
  const metrics = new ProxyMetrics([ours], { requests, latency }, BOUNDS);
  const theirs = new Registry();
  const counter = new Counter({
    name: requests[0],
    help: requests[1],
    labelNames: ["service", "code"],
    registers: [theirs],
  });
  const histogram = new Histogram({
    name: latency[0],
    help: latency[1],
    labelNames: ["service"],
    buckets: BOUNDS,
    registers: [theirs],
  });
  // A service name with the characters the text format escapes, a bound hit exactly, one past every bound.
  const answers: [string, number, number][] = [
    ["web/hello", 200, 0.4],
    ["web/hello", 204, 1],
    ["web/hello", 503, 2500],
    ["-", 404, 0.05],
    ['odd "name" \\ x', 101, 10],
    ["web/hello", 302, 100],
  ];
  for (const [service, status, ms] of answers) {
    metrics.answered(service, status, ms);
    counter.inc({ service, code: `${Math.floor(status / 100)}xx` });
    histogram.observe({ service }, ms / 1000);
  }
  const sorted = (text: string) => text.split("\n").sort().join("\n");
  assert.equal(sorted(await ours.metrics()), sorted(await theirs.metrics()));
  assert.match(await ours.metrics(), /t_requests_total\{service="web\/hello",code="2xx"\} 2/);
});

Deno.test("proxy metrics with no answers yet have their help and type, and no series", async () => {
  const registry = new Registry();
  new ProxyMetrics([registry], { requests, latency }, BOUNDS);
  assert.equal(
    await registry.metrics(),
    "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n\n" +
      "# HELP t_duration_seconds Latency.\n# TYPE t_duration_seconds histogram\n",
  );
});
