/**
 * Passing an HTTP request on to another server (a container replica, a peer's proxy) and its answer back: the
 * headers of one connection stay behind, bodies stream both ways, and a body fetch decoded on its way in no longer
 * says it is encoded.
 */

import type { HttpContext } from "./types.ts";

/** Headers that belong to one connection, never passed on. */
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"];

/** The encodings fetch decodes on its own (measured: gzip and br; deflate and zstd arrive as they were sent). */
const DECODED = /^\s*(gzip|x-gzip|br)\s*$/i;

/** `headers` without those of one connection: the hop-by-hop ones, and any that `Connection` names. */
export function endToEnd(headers: Headers): Headers {
  const out = new Headers(headers);
  for (const name of (headers.get("connection") ?? "").split(",")) if (name.trim()) out.delete(name.trim());
  for (const h of HOP_BY_HOP) out.delete(h);
  return out;
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
  const headers = endToEnd(res.headers);
  if (DECODED.test(headers.get("content-encoding") ?? "")) {
    headers.delete("content-encoding");
    headers.delete("content-length");
  }
  // A small answer goes out in one write: streamed, its body is a second small write, which a TLS connection
  // holds back until the client acknowledges the first (Nagle's algorithm against delayed ACKs: 40 ms each).
  const length = Number(headers.get("content-length") ?? NaN);
  const body = length <= BUFFERED_ANSWER_BYTES && res.body ? await res.arrayBuffer() : res.body;
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

/** Answers up to this long (by their Content-Length) are read whole before they are sent on. */
const BUFFERED_ANSWER_BYTES = 64 * 1024;

/**
 * Puts in `headers` what the proxy saw of the client, in place of whatever the client said of itself:
 * `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239). Without `client`, none.
 */
export function setForwarding(headers: Headers, client: HttpContext["client"]): void {
  for (const h of FORWARDING) headers.delete(h);
  for (const [name, value] of forwardingOf(client)) headers.set(name, value);
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
