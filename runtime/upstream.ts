/**
 * The headers of a request passed on to another server (a container replica, a peer's proxy): those of one
 * connection stay behind, and what the proxy saw of the client replaces what the client said of itself. The bytes
 * go through `h1.ts`.
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

/**
 * `headers` as pairs to pass on, in one pass: without those of one connection (the hop-by-hop ones, and any that
 * `Connection` names) nor any named in `drop`.
 */
export function endToEndPairs(headers: Headers, drop?: ReadonlySet<string>): [string, string][] {
  return withoutHopByHop(headers, connectionNames(headers.get("connection") ?? ""), drop);
}

const NO_NAMES: ReadonlySet<string> = new Set();

/** The header names a `Connection` value (or several, comma-joined) lists, lower case. */
export function connectionNames(value: string): ReadonlySet<string> {
  if (value === "") return NO_NAMES;
  const names = new Set<string>();
  for (const name of value.split(",")) if (name.trim()) names.add(name.trim().toLowerCase());
  return names;
}

/** `pairs` (lower-case names) without the hop-by-hop ones, those `named` (by `Connection`) and those in `drop`. */
export function withoutHopByHop(
  pairs: Iterable<[string, string]>,
  named: ReadonlySet<string>,
  drop?: ReadonlySet<string>,
): [string, string][] {
  const kept: [string, string][] = [];
  for (const pair of pairs) {
    const name = pair[0];
    if (!HOP_BY_HOP.has(name) && !drop?.has(name) && !named.has(name)) kept.push(pair);
  }
  return kept;
}

/** `headers` without those of one connection: the hop-by-hop ones, and any that `Connection` names. */
export function endToEnd(headers: Headers): Headers {
  return new Headers(endToEndPairs(headers));
}

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
export function withForwarding(
  entries: readonly [string, string][],
  client: HttpContext["client"],
): [string, string][] {
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

/** `headers` with the true length of a body held whole (any length or transfer coding it carried is dropped). */
export function withLength(headers: [string, string][], length: number): [string, string][] {
  const kept = headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return lower !== "content-length" && lower !== "transfer-encoding";
  });
  kept.push(["content-length", String(length)]);
  return kept;
}

const pairsOf = new WeakMap<Request, [string, string][]>();

/**
 * A request's header fields as pairs, read once per request object: reading a Request's Headers is not free (Deno
 * sorts and joins them), and both the proxy (its header limit) and a Wasm runtime read them. The same array for every
 * caller: not to be changed. A request made anew (one stripped of forwarding headers, say) is read anew.
 */
export function headerPairs(request: Request): readonly [string, string][] {
  let pairs = pairsOf.get(request);
  if (!pairs) pairsOf.set(request, pairs = [...request.headers]);
  return pairs;
}
