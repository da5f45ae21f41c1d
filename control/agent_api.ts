/**
 * A worker node's own API (its `--api-port`, with the cluster token): what
 * the servers ask of it. Its health and self-report for `orca nodes`, the
 * leader's request to start a deploy's new versions before it commits, and
 * the logs, stats and exec of the replicas it runs.
 */

import { Hono } from "hono";
import { defaultBodyLimits } from "./body.ts";
import type { ControlPlane } from "./plane.ts";
import { answerErrors, replicaRoutes } from "./replica_routes.ts";
import type { NodeMetrics } from "./metrics.ts";
import { metricsAnswer } from "./metrics_server.ts";

export interface AgentApiOptions {
  plane: ControlPlane;
  /** What the worker says of itself (`GET /cluster/status`). */
  self(): Promise<Record<string, unknown>>;
  metrics: NodeMetrics;
  onError?: (err: unknown) => void;
}

/** A handler of requests whose token was checked. */
export function createAgentApi(opts: AgentApiOptions): (request: Request, url: URL) => Promise<Response> {
  const app = new Hono().basePath("/api/v1");
  app.get("/health", (c) => c.json({ ok: true, role: "worker" }));
  app.get("/cluster/status", async (c) => c.json(await opts.self()));
  app.get("/services", async (c) => c.json({ services: await opts.plane.status() }));
  replicaRoutes(app, opts.plane, defaultBodyLimits);
  app.on(["GET", "HEAD"], "/metrics", (c) => metricsAnswer(opts.metrics, c.req.raw, "/api/v1/metrics", () => {}));
  answerErrors(app, opts.onError);
  return async (request) => await app.fetch(request);
}
