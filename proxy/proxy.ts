/** The HTTP front door: match a route, hand the request to its service. */

import { OrcaError } from "../errors.ts";
import { headerPairs, type HttpContext } from "../runtime/mod.ts";
import { parseHost, requestTarget } from "./host.ts";
import type { RouteTable } from "./router.ts";
import type { AccessLog } from "./access_log.ts";

/** Whatever answers for a service (the control plane wires runtimes in). */
export type ServeService = (service: string, request: Request, ctx: HttpContext) => Promise<Response>;

export interface ProxyOptions {
  /** The current table; read per request so deploys swap it atomically. */
  routes(): RouteTable;
  serve: ServeService;
  /**
   * The Host to route by when another server of the cluster forwarded the request (it carries the client's):
   * undefined for any other request.
   */
  forwardedHost?(request: Request): string | undefined;
  /** `https` for the TLS listener (what `X-Forwarded-Proto` tells the service); default `http`. */
  scheme?: "http" | "https";
  /** The answer to an ACME HTTP-01 challenge under way (asked on plain HTTP only). */
  challenge?(token: string): string | undefined;
  /** The HTTPS port a plain HTTP request for `hostname` is redirected to; undefined: served on HTTP. */
  redirectPort?(hostname: string): number | undefined;
  /** Where each answer is logged (`orca logs --access`). */
  access?: AccessLog;
  /** Called for every request that failed inside Orca (not the guest's own 5xx). */
  onError?(err: unknown, request: Request): void;
}

const json = (status: number, body: Record<string, unknown>) => Response.json(body, { status });

const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** What a request was, for the access log: filled in as the proxy learns it. */
interface Seen {
  service: string;
  host: string;
  path: string;
  proto: "http" | "https";
  client?: string;
}

/**
 * A `(Request) => Response` handler, testable without a socket. `remote` is the connection's peer: the client, or
 * (for a request another server of the cluster forwarded) that server, whose `X-Forwarded-For` then names the client.
 */
export function createProxy(
  opts: ProxyOptions,
): (request: Request, remote?: Deno.NetAddr) => Promise<Response> {
  const scheme = opts.scheme ?? "http";
  const plain = scheme === "http";
  const access = opts.access;

  const answer = async (request: Request, remote: Deno.NetAddr | undefined, seen: Seen): Promise<Response> => {
    // Host is checked before the URL is read: the URL is built from it, and routing uses the request's own path.
    const target = requestTarget(request);
    if ("error" in target) return json(400, { error: "bad request", detail: target.error });
    const { url } = target;
    let host = target.host;
    const original = opts.forwardedHost?.(request);
    if (original !== undefined) {
      const parsed = parseHost(original);
      if (!parsed) return json(400, { error: "bad request", detail: "malformed forwarded Host" });
      host = parsed;
    }
    seen.host = host.hostname;
    seen.path = url.pathname;
    if (plain && original === undefined) {
      if (url.pathname.startsWith(CHALLENGE_PREFIX) && opts.challenge) {
        const answer = opts.challenge(url.pathname.slice(CHALLENGE_PREFIX.length));
        if (answer !== undefined) return new Response(answer, { headers: { "content-type": "text/plain" } });
      }
      const port = opts.redirectPort?.(host.hostname);
      if (port !== undefined) {
        const location = `https://${host.hostname}${port === 443 ? "" : `:${port}`}${url.pathname}${url.search}`;
        return new Response(null, { status: 308, headers: { location } });
      }
    }
    // A server of the cluster says who its client was, and how it came; anyone else is the client itself.
    const address = original !== undefined
      ? request.headers.get("x-forwarded-for")?.split(",").pop()?.trim()
      : remote?.hostname;
    const proto = original === undefined
      ? scheme
      : request.headers.get("x-forwarded-proto") === "https"
      ? "https" as const
      : "http" as const;
    seen.proto = proto;
    if (address !== undefined) seen.client = address;
    const client = address ? { address, proto, host: original ?? request.headers.get("host") ?? url.host } : undefined;
    const routed = opts.routes().match(host.hostname, url.pathname);
    if (routed === null) return json(400, { error: "bad request", detail: "malformed percent-encoding in path" });
    if (!routed) return json(404, { error: "no route", host: host.hostname, path: url.pathname });
    const service = routed.route.service;
    seen.service = service;
    const limits = routed.route.limits;
    let exceeded = false;
    if (limits) {
      if (headerBytes(headerPairs(request)) > limits.maxHeader) {
        return json(431, { error: "request headers too large", service, limit: limits.maxHeader });
      }
      const declared = request.headers.get("content-length");
      if (declared !== null && Number(declared) > limits.maxBody) {
        return json(413, { error: "request body too large", service, limit: limits.maxBody });
      }
      // A body of unknown length is counted as it streams: past the limit it fails, and the client is told 413.
      if (declared === null && request.body) {
        let bytes = 0;
        const counted = request.body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              bytes += chunk.byteLength;
              if (bytes > limits.maxBody) {
                exceeded = true;
                controller.error(new Error("request body too large"));
              } else controller.enqueue(chunk);
            },
          }),
        );
        request = new Request(request, { body: counted, duplex: "half" } as RequestInit);
      }
    }
    try {
      const response = await opts.serve(service, request, {
        params: routed.params,
        route: routed.route.pattern,
        ...(routed.rest !== undefined && { rest: routed.rest }),
        ...(client && { client }),
      });
      return exceeded ? tooLarge(response, service, limits!.maxBody) : response;
    } catch (err) {
      if (exceeded) return json(413, { error: "request body too large", service, limit: limits!.maxBody });
      // A service that is full says when to come back: no error to log, the client is told at once.
      if (err instanceof OrcaError && err.retryAfter !== undefined) {
        const headers = { "retry-after": String(Math.ceil(err.retryAfter)) };
        return Response.json({ error: "service busy", service, detail: err.message }, { status: 503, headers });
      }
      opts.onError?.(err, request);
      return json(502, { error: "service unavailable", service });
    }
  };

  if (!access) return (request, remote) => answer(request, remote, { service: "-", host: "", path: "", proto: scheme });
  return async (request, remote) => {
    const started = access.begin();
    const seen: Seen = { service: "-", host: "", path: "", proto: scheme };
    let response: Response;
    try {
      response = await answer(request, remote, seen);
    } catch (err) {
      access.abandon();
      throw err;
    }
    return access.answered({ ...seen, method: request.method }, response, started);
  };
}

/** The bytes of a request's header fields, as sent (name, value, `: ` and CRLF). */
function headerBytes(headers: readonly [string, string][]): number {
  let n = 0;
  for (const [name, value] of headers) n += name.length + value.length + 4;
  return n;
}

/** What the service answered to a body cut short at the limit: a 413 instead, its own answer dropped. */
function tooLarge(response: Response, service: string, limit: number): Response {
  response.body?.cancel().catch(() => {});
  return json(413, { error: "request body too large", service, limit });
}
