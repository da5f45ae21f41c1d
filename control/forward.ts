/**
 * Requests for a service with no replica on this server go to a server that
 * has one (the one with the fewest of ours in flight), with the original
 * method, path, Host and body, streamed both ways. Such a request carries a
 * credential only the cluster's servers can make (derived from the cluster
 * token) and the Host the client sent; a server serves it from its own
 * replicas only (or, if its replica just moved, once more to a ready one), and the headers are removed
 * before the service sees the request. A client that sends them without the
 * credential gets them removed and is served as any other request.
 */

import { timingSafeEqual } from "node:crypto";
import { forwardedPairs, type HttpContext, UpstreamPool } from "../runtime/mod.ts";
import { bridgeWebSocket, isWebSocket } from "../runtime/websocket.ts";

/** The credential a forwarded request carries. */
export const FORWARD_HEADER = "x-orca-proxied";
/** The Host the client sent, on a forwarded request (fetch sets Host to the peer's address). */
export const FORWARD_HOST_HEADER = "x-orca-proxied-host";
/**
 * `2` on a request forwarded a second time: a server that got it forwarded but runs the service no more (its replica
 * just moved) sends it on once, to a server whose replica is ready. Never a third time.
 */
export const FORWARD_HOP_HEADER = "x-orca-proxied-hop";

const encoder =
  new TextEncoder(); /** The proxies' credential for a cluster: HMAC-SHA-256 of a fixed label under the cluster token. */
export async function forwardCredential(token: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(token), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode("orca proxy forward v1"));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

export interface ForwarderOptions {
  credential: string;
  /** Where server `node`'s proxy listens (`host:port`), if it said. */
  proxyOf(node: string): string | undefined;
  /** How long a forwarded request may take to get its answer's head. */
  timeoutMs?: number;
}

export class Forwarder {
  readonly #opts: ForwarderOptions;
  readonly #credential: Uint8Array;
  /** Requests of ours under way at each server. */
  readonly #inFlight = new Map<string, number>();
  /** Keep-alive connections to the other servers' proxies. */
  readonly #upstream = new UpstreamPool();

  constructor(opts: ForwarderOptions) {
    this.#opts = opts;
    this.#credential = encoder.encode(opts.credential);
  }

  /** The Host to route `request` by when another server forwarded it (its credential checks out); else undefined. */
  forwardedHost(request: Request): string | undefined {
    if (!this.isForwarded(request)) return undefined;
    return request.headers.get(FORWARD_HOST_HEADER) ?? undefined;
  }

  /** How many times a server of this cluster forwarded `request` (0: it comes from a client). */
  hops(request: Request): number {
    if (!this.isForwarded(request)) return 0;
    return request.headers.get(FORWARD_HOP_HEADER) === "2" ? 2 : 1;
  }

  /** Whether `request` was forwarded by a server of this cluster. */
  isForwarded(request: Request): boolean {
    const given = request.headers.get(FORWARD_HEADER);
    if (given === null) return false;
    const bytes = encoder.encode(given);
    return bytes.length === this.#credential.length && timingSafeEqual(bytes, this.#credential);
  }

  /**
   * `request` as the service is to see it: without the forwarding headers, and with the client's own Host when a
   * server forwarded it (the same request when it has none of them).
   */
  strip(request: Request): Request {
    const headers = this.strippedHeaders(request);
    return headers ? new Request(request, { headers }) : request;
  }

  /** The headers `strip` gives the service, or undefined when `request` has none to strip. */
  strippedHeaders(request: Request): Headers | undefined {
    if (!request.headers.has(FORWARD_HEADER) && !request.headers.has(FORWARD_HOST_HEADER)) return undefined;
    const original = this.forwardedHost(request);
    const headers = new Headers(request.headers);
    headers.delete(FORWARD_HEADER);
    headers.delete(FORWARD_HOST_HEADER);
    headers.delete(FORWARD_HOP_HEADER);
    if (original !== undefined) headers.set("host", original);
    return headers;
  }

  /**
   * Sends `request` to one of `groups`' servers: the first group first (those whose replica is ready), fewest in
   * flight first within a group; a server that cannot be reached is skipped while the body has not been sent.
   * Resolves with the first answer, or a 502/503 naming the servers tried.
   */
  async forward(
    request: Request,
    url: URL,
    service: string,
    groups: readonly (readonly string[])[],
    /** The client as this server's proxy saw it: the next server takes its word for it (the credential vouches). */
    client?: HttpContext["client"],
  ): Promise<Response> {
    const hop = this.hops(request) + 1;
    const load = (node: string) => this.#inFlight.get(node) ?? 0;
    const targets = groups.flatMap((nodes) => [...nodes].sort((a, b) => load(a) - load(b)))
      .map((node) => ({ node, address: this.#opts.proxyOf(node) }))
      .filter((t): t is { node: string; address: string } => t.address !== undefined);
    if (targets.length === 0) {
      return Response.json({ error: "service unavailable", service, detail: "no server with a replica is known" }, {
        status: 503,
        headers: { "retry-after": "1" },
      });
    }
    const headers = new Headers(forwardedPairs(request.headers, client));
    headers.set(FORWARD_HOST_HEADER, this.forwardedHost(request) ?? request.headers.get("host") ?? url.host);
    headers.set(FORWARD_HEADER, new TextDecoder().decode(this.#credential));
    if (hop > 1) headers.set(FORWARD_HOP_HEADER, String(hop));
    else headers.delete(FORWARD_HOP_HEADER);
    headers.delete("host");
    const tried: string[] = [];
    const upgrade = isWebSocket(request);
    for (const { node, address } of targets) {
      this.#inFlight.set(node, (this.#inFlight.get(node) ?? 0) + 1);
      try {
        // A WebSocket: bridged to the same upgrade at that server's proxy (this server's answer is the client's).
        if (upgrade) {
          const ws = `ws://${address}${url.pathname}${url.search}`;
          return await bridgeWebSocket(ws, request, headers, this.#opts.timeoutMs ?? 10_000);
        }
        return await this.#upstream.requestTo(address, {
          method: request.method,
          target: `${url.pathname}${url.search}`,
          headers,
          body: request.body,
          timeoutMs: this.#opts.timeoutMs ?? 60_000,
        });
      } catch (err) {
        tried.push(`${node} at ${address}: ${(err as Error).message}`);
        // A body can be sent once: only a request without one goes on to the next server.
        if (request.body !== null) break;
      } finally {
        this.#inFlight.set(node, (this.#inFlight.get(node) ?? 1) - 1);
      }
    }
    return Response.json(
      { error: "service unavailable", service, detail: `no replica answered: ${tried.join("; ")}` },
      {
        status: 502,
      },
    );
  }
}
