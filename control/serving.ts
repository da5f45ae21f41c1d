/**
 * How a routed request reaches a service: a replica here that the watchdog
 * lets have requests, else a server that has one. While a canary of the
 * service runs, it gets its exact share of the requests here, and both
 * versions' answers are measured for its analysis.
 */

import type { HttpContext } from "../runtime/mod.ts";
import { isWebSocket } from "../runtime/websocket.ts";
import type { Forwarder } from "./forward.ts";
import type { Placing } from "./placing.ts";
import type { Rollouts } from "./rollouts.ts";
import type { Watchdog } from "./watchdog.ts";
import type { Active, Workloads } from "./workloads.ts";

export class Serving {
  readonly #workloads: Workloads;
  readonly #watchdog: Watchdog;
  readonly #placing: Placing;
  readonly #rollouts: Rollouts;
  readonly #forwarder?: Forwarder;

  constructor(workloads: Workloads, watchdog: Watchdog, placing: Placing, rollouts: Rollouts, forwarder?: Forwarder) {
    this.#workloads = workloads;
    this.#watchdog = watchdog;
    this.#placing = placing;
    this.#rollouts = rollouts;
    this.#forwarder = forwarder;
  }

  /**
   * Answers an HTTP request for `service` (a route's target): from a replica here, or else through a server that
   * has one (a request another server forwarded is answered from here only).
   */
  serve(service: string, request: Request, ctx: HttpContext): Promise<Response> {
    const rollout = this.#rollouts.active(service);
    if (!rollout) return this.#from(service, this.#workloads.active.get(service), request, ctx);
    const canary = this.#workloads.active.get(`${service}#canary`);
    const a = canary?.handle && this.#rollouts.toCanary(rollout) ? canary : this.#workloads.active.get(service);
    // Only answers from here are measured: a request forwarded to another server is measured there.
    if (!a?.handle) return this.#from(service, a, request, ctx);
    const version = a.stored.version;
    const started = performance.now();
    return this.#from(service, a, request, ctx).then((res) => {
      this.#rollouts.record(service, version, res.status, performance.now() - started);
      return res;
    }, (err) => {
      this.#rollouts.record(service, version, 500, performance.now() - started);
      throw err;
    });
  }

  #from(service: string, a: Active | undefined, request: Request, ctx: HttpContext): Promise<Response> {
    const forwarder = this.#forwarder;
    if (isWebSocket(request)) {
      // Wasm guests answer requests, not connections (a replica elsewhere: its server's proxy says so).
      const why = a?.handle?.runtime === "wasm"
        ? "a Wasm service cannot take a WebSocket (its runtime answers requests, not connections)"
        : !a?.handle && !forwarder
        ? "no replica of it runs here"
        : undefined;
      if (why) {
        return Promise.resolve(Response.json({ error: "not implemented", service, detail: why }, { status: 501 }));
      }
    }
    if (a?.handle && this.#watchdog.routable(a.handle)) {
      const runtime = this.#workloads.runtime(a.handle);
      // An upgrade can be made of the request the server took only: what is stripped goes beside it.
      const headers = isWebSocket(request) ? forwarder?.strippedHeaders(request) : undefined;
      if (headers) return runtime.serveHttp(a.handle, request, { ...ctx, headers });
      return runtime.serveHttp(a.handle, forwarder?.strip(request) ?? request, ctx);
    }
    // No replica here, or it failed to start here: one elsewhere answers.
    if (forwarder) {
      const { ready, others } = this.#placing.elsewhere(service);
      const hops = forwarder.hops(request);
      if (hops === 0 && ready.length + others.length > 0) {
        return forwarder.forward(request, new URL(request.url), service, [ready, others], ctx.client);
      }
      // Forwarded here as its replica moved away: once more, to one that is ready.
      if (hops === 1 && ready.length > 0) {
        return forwarder.forward(request, new URL(request.url), service, [ready], ctx.client);
      }
    }
    return Promise.resolve(
      Response.json({ error: "service unavailable", service, detail: a?.failure ?? (a && "no replica is ready") }, {
        status: 503,
        headers: { "retry-after": "1" },
      }),
    );
  }
}
