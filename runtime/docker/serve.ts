/**
 * A request to a container service, sent on to one of its replicas: the next routed one, over a kept connection
 * (`h1.ts`) to its address on the project network. A replica that refuses the connection (it died since the
 * watchdog last looked) is taken out of the routes and the request goes to the next, as it never reached the first.
 */

import type { ServiceSpec } from "../../config/mod.ts";
import { IDEMPOTENT, UpstreamError, type UpstreamPool } from "../h1.ts";
import type { HttpContext } from "../types.ts";
import { forwardedPairs } from "../upstream.ts";
import { bridgeWebSocket, isWebSocket } from "../websocket.ts";
import { type Replica, upstreamOf } from "./replicas.ts";

/** How long a container has to answer a request's head, unless `limits.timeout_ms` says. */
const UPSTREAM_TIMEOUT_MS = 60_000;
/** Request bodies up to this size are read before they go on (so they can be sent again); larger ones stream. */
const BUFFERED_BODY_BYTES = 1024 * 1024;

/** What serving needs of a workload: its replicas, whose turn is next, and its counts. */
export interface Served {
  spec: { service: ServiceSpec };
  replicas: Replica[];
  next: number;
  failures: number;
  requests: number;
}

/** Answers `request` from `w`'s replicas, or says why none could. */
export async function serveReplicas(
  w: Served,
  upstream: UpstreamPool,
  request: Request,
  ctx: HttpContext,
): Promise<Response> {
  const url = new URL(request.url);
  w.requests++;
  // A small body is read first, so the request can go to another replica; a larger one (or one of unknown
  // length) streams through, and its request is tried once: nothing a client sends is held whole.
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  const length = Number(request.headers.get("content-length") ?? NaN);
  const body = !hasBody ? undefined : length <= BUFFERED_BODY_BYTES ? await request.arrayBuffer() : request.body!;
  const headers = forwardedPairs(ctx.headers ?? request.headers, ctx.client);
  const upgrade = isWebSocket(request);
  const timeoutMs = w.spec.service.limits.timeout_ms ?? UPSTREAM_TIMEOUT_MS;
  for (let tries = w.replicas.length; tries > 0; tries--) {
    const routed = w.replicas.filter((r) => r.routed && upstreamOf(w.spec.service, r));
    if (routed.length === 0) break;
    const target = routed[w.next++ % routed.length];
    const { hostname, port } = upstreamOf(w.spec.service, target)!;
    try {
      if (upgrade) {
        const to = `ws://${hostname}:${port}${url.pathname}${url.search}`;
        return await bridgeWebSocket(to, request, new Headers(headers), timeoutMs);
      }
      return await upstream.request(hostname, port, {
        method: request.method,
        target: `${url.pathname}${url.search}`,
        headers,
        body,
        timeoutMs,
      });
    } catch (err) {
      const kind = err instanceof UpstreamError ? err.kind : "closed";
      const why = (err as Error).message;
      if (kind === "timeout") {
        w.failures++;
        return Response.json({ error: "the container did not answer in time", detail: why }, { status: 504 });
      }
      // Not connected, it never got the request; connected and cut before an answer, only a method that may run
      // twice goes to the next one (the engine's port proxy accepts for a container that is gone, then closes).
      const again = !(body instanceof ReadableStream) &&
        (kind === "connect" || (IDEMPOTENT.has(request.method) && kind === "closed"));
      if (!again) {
        w.failures++;
        return Response.json({ error: "the container did not answer", detail: why }, { status: 502 });
      }
      target.routed = false;
    }
  }
  w.failures++;
  const detail = w.replicas.some((r) => upstreamOf(w.spec.service, r))
    ? "no replica is running and ready"
    : "it has no port";
  return Response.json({ error: `service ${w.spec.service.name} cannot answer: ${detail}` }, {
    status: 503,
    headers: { "retry-after": "1" },
  });
}
