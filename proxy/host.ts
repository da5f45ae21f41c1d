/**
 * The Host header, read strictly (RFC 9110 7.2, RFC 3986 3.2.2): `host[:port]`
 * where host is a reg-name, an IPv4 address or a bracketed IP literal. The
 * server builds `request.url` from Host and the request target, so a Host
 * carrying `/`, `?`, `#` or `@` would rewrite the path a router sees: such a
 * request is refused before anything reads its URL.
 */

/** A Host header taken apart: the name lowercased (brackets kept for IPv6), without a trailing dot. */
export interface ParsedHost {
  hostname: string;
  port?: number;
}

/** The longest Host accepted: a DNS name (253) with a port. */
export const MAX_HOST_LENGTH = 261;

// reg-name = *( unreserved / pct-encoded / sub-delims ); pct-encoded names are refused (no DNS name needs one).
const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=]+$/;
const IP_LITERAL = /^\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]$/;

/** Host values read lately and what they gave (null: not a Host): a client sends the same one request after request. */
const known = new Map<string, Readonly<ParsedHost> | null>();
/** At most this many are kept (emptied when full: a client sending a new Host each time costs memory no more). */
export const KNOWN_MAX = 1024;

/** How many Host values are kept now (for tests). */
export const knownHosts = (): number => known.size;

/** The parts of `value`, or `undefined` when it is not a valid Host. */
export function parseHost(value: string): Readonly<ParsedHost> | undefined {
  const seen = known.get(value);
  if (seen !== undefined) return seen ?? undefined;
  const parsed = read(value);
  if (known.size >= KNOWN_MAX) known.clear();
  known.set(value, parsed ? Object.freeze(parsed) : null);
  return parsed;
}

function read(value: string): ParsedHost | undefined {
  if (value.length === 0 || value.length > MAX_HOST_LENGTH) return undefined;
  let name = value;
  let portText: string | undefined;
  const close = value.lastIndexOf("]");
  const colon = value.lastIndexOf(":");
  if (colon > close) {
    name = value.slice(0, colon);
    portText = value.slice(colon + 1);
  }
  if (!(REG_NAME.test(name) || IP_LITERAL.test(name))) return undefined;
  let port: number | undefined;
  if (portText !== undefined && portText !== "") {
    if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port > 65535) return undefined;
  }
  // The URL parser has the last word on IP literals and on names it would refuse (e.g. `a..b` is fine, `%` is not).
  try {
    new URL(`http://${name}/`);
  } catch {
    return undefined;
  }
  const hostname = name.toLowerCase().replace(/\.$/, "");
  if (hostname === "") return undefined;
  return port === undefined ? { hostname } : { hostname, port };
}

/** Why `request` cannot be served, or its host and URL. Reads the URL only once Host is known to be sound. */
export function requestTarget(request: Request): { host: Readonly<ParsedHost>; url: URL } | { error: string } {
  const header = request.headers.get("host");
  let url: URL;
  if (header !== null) {
    const host = parseHost(header);
    if (!host) return { error: "malformed Host header: expected host[:port]" };
    try {
      url = new URL(request.url);
    } catch {
      return { error: "malformed request target" };
    }
    return { host, url };
  }
  try {
    url = new URL(request.url);
  } catch {
    return { error: "malformed request target" };
  }
  const host = parseHost(url.host);
  return host ? { host, url } : { error: "missing Host header" };
}
