/**
 * Where a node's metrics are read: `GET /api/v1/metrics` (with the token, like every API call) and, when asked for
 * (`--metrics-listen ADDR:PORT`), a listener of their own without a token that answers `GET /metrics` and nothing
 * else, for a Prometheus that scrapes over a private network.
 */

import { OrcaError } from "../errors.ts";
import type { JobTriggers } from "./jobs.ts";
import { type MetricsSources, NodeMetrics, STATS_TIMEOUT_MS } from "./metrics.ts";
import type { ControlPlane } from "./plane.ts";

/** Makes the node's metrics, and tells the proxy and the triggers to count into them. */
export function startMetrics(opts: {
  plane: ControlPlane;
  wasmHosts: MetricsSources["wasmHosts"];
  proxyPorts: () => number[];
  raft?: MetricsSources["raft"];
  jobs?: JobTriggers;
}): NodeMetrics {
  const { plane, jobs } = opts;
  const metrics = new NodeMetrics({
    workloads: () => plane.ops.allStats(STATS_TIMEOUT_MS),
    inFlight: () => plane.access.inFlight,
    proxyPorts: opts.proxyPorts,
    wasmHosts: opts.wasmHosts,
    ...(opts.raft && { raft: opts.raft }),
    ...(jobs && { queues: () => jobs.queues.topics() }),
  });
  plane.access.onAnswered = (service, status, ms) => metrics.answered(service, status, ms);
  if (jobs) jobs.onRun = (service, trigger, ok) => metrics.ran(service, trigger, ok);
  return metrics;
}

/**
 * The listener of `--metrics-listen` (opened with the node's other listeners, so a port in use fails the start): it
 * answers 503 until the node's metrics exist (`metrics()`), then `GET /metrics`, without a token.
 */
export function serveMetrics(
  listen: { hostname: string; port: number },
  metrics: () => NodeMetrics | undefined,
  log: (line: string) => void,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ ...listen, onListen() {} }, (request) => {
    const m = metrics();
    if (!m) return new OrcaError("unavailable", "the node is starting", { retryAfter: 1 }).toResponse();
    return metricsAnswer(m, request, "/metrics", log);
  });
}

/** The answer to a scrape at `path`: the text format for GET and HEAD, 405 for other methods, 404 elsewhere. */
export async function metricsAnswer(
  metrics: NodeMetrics,
  request: Request,
  path: string,
  log: (line: string) => void,
): Promise<Response> {
  if (new URL(request.url).pathname !== path) {
    return new OrcaError("not_found", "only /metrics is served here", { hint: "scrape GET /metrics" }).toResponse();
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response(JSON.stringify({ error: { code: "invalid", message: "metrics are read with GET" } }), {
      status: 405,
      headers: { allow: "GET, HEAD", "content-type": "application/json" },
    });
  }
  try {
    const { text, contentType } = await metrics.scrape();
    return new Response(request.method === "HEAD" ? null : text, { headers: { "content-type": contentType } });
  } catch (err) {
    log(`metrics: ${(err as Error).message ?? err}`);
    return new OrcaError("internal", "the metrics could not be read").toResponse();
  }
}
