/**
 * Passing an HTTP request on to another server (a container replica, a peer's proxy) and its answer back: the
 * headers of one connection stay behind, bodies stream both ways, and a body fetch decoded on its way in no longer
 * says it is encoded.
 */

import type { HttpContext } from "./types.ts";

/** Headers that belong to one connection, never passed on. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
]);

/** The encodings fetch decodes on its own (measured: gzip and br; deflate and zstd arrive as they were sent). */
const DECODED = /^\s*(gzip|x-gzip|br)\s*$/i;

/**
 * `headers` as pairs to pass on, in one pass: without those of one connection (the hop-by-hop ones, and any that
 * `Connection` names) nor any named in `drop`.
 */
export function endToEndPairs(headers: Headers, drop?: ReadonlySet<string>): [string, string][] {
  const connection = headers.get("connection");
  const named = connection ? new Set(connection.split(",").map((n) => n.trim().toLowerCase())) : undefined;
  const pairs: [string, string][] = [];
  for (const pair of headers) {
    const name = pair[0];
    if (!HOP_BY_HOP.has(name) && !drop?.has(name) && !named?.has(name)) pairs.push(pair);
  }
  return pairs;
}

/** `headers` without those of one connection: the hop-by-hop ones, and any that `Connection` names. */
export function endToEnd(headers: Headers): Headers {
  return new Headers(endToEndPairs(headers));
}

/**
 * Fetches `url`, allowing `timeoutMs` for the answer's head only (a streamed body may take as long as it takes),
 * and returns the answer to send on. fetch decodes a gzip or brotli body itself: the answer then says no encoding.
 */
export async function passOn(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: "manual", signal: abort.signal });
  } finally {
    clearTimeout(timer);
  }
  const decoded = DECODED.test(res.headers.get("content-encoding") ?? "");
  const headers = endToEndPairs(res.headers, decoded ? ENCODING : undefined);
  // A small answer goes out in one write: streamed, its body is a second small write, which a TLS connection
  // holds back until the client acknowledges the first (Nagle's algorithm against delayed ACKs: 40 ms each).
  const length = decoded ? NaN : Number(res.headers.get("content-length") ?? NaN);
  const body = length <= BUFFERED_ANSWER_BYTES && res.body ? await res.arrayBuffer() : res.body;
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

/** Answers up to this long (by their Content-Length) are read whole before they are sent on. */
const BUFFERED_ANSWER_BYTES = 64 * 1024;

/** What no longer holds of an answer fetch decoded. */
const ENCODING = new Set(["content-encoding", "content-length"]);

/**
 * `headers` as pairs to pass on (`endToEndPairs`), with what the proxy saw of the client in place of whatever the
 * client said of itself: `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239).
 * Without `client`, none.
 */
export function forwardedPairs(headers: Headers, client: HttpContext["client"]): [string, string][] {
  const pairs = endToEndPairs(headers, FORWARDING);
  for (const pair of forwardingOf(client)) pairs.push(pair);
  return pairs;
}

/** `entries` (a request's headers, as pairs) with the forwarding ones replaced the same way. */
export function withForwarding(entries: [string, string][], client: HttpContext["client"]): [string, string][] {
  return [...entries.filter(([name]) => !FORWARDING.has(name.toLowerCase())), ...forwardingOf(client)];
}

const FORWARDING = new Set(["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]);

function forwardingOf(client: HttpContext["client"]): [string, string][] {
  if (!client) return [];
  const node = client.address.includes(":") ? `"[${client.address}]"` : client.address;
  return [
    ["x-forwarded-for", client.address],
    ["x-forwarded-proto", client.proto],
    ["x-forwarded-host", client.host],
    ["forwarded", `for=${node};proto=${client.proto};host="${client.host.replace(/["\\]/g, "")}"`],
  ];
}
