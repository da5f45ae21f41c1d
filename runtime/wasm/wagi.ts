/**
 * WAGI: any WASI command as an HTTP handler, CGI-style. The request goes in
 * as environment variables and stdin; the response comes out on stdout as
 * CGI headers, a blank line, then the body.
 */

import type { HttpContext } from "../types.ts";

/** The CGI environment for `request` (RFC 3875 names, plus Orca's route params). */
export function cgiEnv(
  method: string,
  url: URL,
  headers: readonly [string, string][],
  ctx: HttpContext,
  bodyLength: number,
): Record<string, string> {
  const env: Record<string, string> = {
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_SOFTWARE: "orca",
    SERVER_PROTOCOL: "HTTP/1.1",
    SERVER_NAME: url.hostname,
    SERVER_PORT: url.port || (url.protocol === "https:" ? "443" : "80"),
    REQUEST_METHOD: method,
    REQUEST_URI: url.pathname + url.search,
    SCRIPT_NAME: scriptName(ctx),
    PATH_INFO: url.pathname,
    QUERY_STRING: url.search.slice(1),
    X_MATCHED_ROUTE: ctx.route,
    X_FULL_URL: url.href,
    X_RAW_PATH_INFO: ctx.rest ?? "",
  };
  if (bodyLength > 0) env.CONTENT_LENGTH = String(bodyLength);
  // The pairs are a request's fields as Deno reads them: names in lower case, each name once.
  for (const [name, value] of headers) {
    if (name === "content-type") {
      if (value) env.CONTENT_TYPE = value;
      continue;
    }
    if (name === "content-length" || name === "authorization") continue;
    env[`HTTP_${name.toUpperCase().replaceAll("-", "_")}`] = value;
  }
  for (const [name, value] of Object.entries(ctx.params)) env[`ORCA_PARAM_${name.toUpperCase()}`] = value;
  return env;
}

function scriptName(ctx: HttpContext): string {
  const prefix = ctx.route.endsWith("/*") ? ctx.route.slice(0, -2) : ctx.route;
  return prefix === "/" ? "" : prefix;
}

/** Parses CGI output into status, headers and body; `undefined` when it has no header block. */
export function parseCgiOutput(
  output: Uint8Array,
): { status: number; headers: [string, string][]; body: Uint8Array } | undefined {
  const end = findHeaderEnd(output);
  if (!end) return undefined;
  const head = decoder.decode(output.subarray(0, end.at));
  const headers: [string, string][] = [];
  let status = 200;
  let location = false;
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // Not a valid field name or value: not a header block.
    if (!TOKEN.test(name) || /[\0\r\n]/.test(value)) return undefined;
    if (name === "status") {
      const code = parseInt(value, 10);
      if (!(code >= 200 && code <= 599)) return undefined;
      status = code;
    } else {
      if (name === "location") location = true;
      headers.push([name, value]);
    }
  }
  if (location && status === 200) status = 302;
  const body = output.subarray(end.at + end.length);
  const nullBody = status === 204 || status === 304;
  return { status, headers, body: nullBody ? new Uint8Array() : body.slice() };
}

/** A header field name (RFC 9110's token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const decoder = new TextDecoder();

function findHeaderEnd(bytes: Uint8Array): { at: number; length: number } | undefined {
  const limit = Math.min(bytes.length, 64 * 1024);
  for (let i = 0; i < limit; i++) {
    if (bytes[i] !== 10) continue;
    if (bytes[i + 1] === 10) return { at: i, length: 2 };
    if (bytes[i + 1] === 13 && bytes[i + 2] === 10) {
      return { at: i > 0 && bytes[i - 1] === 13 ? i - 1 : i, length: bytes[i - 1] === 13 ? 4 : 3 };
    }
  }
  return undefined;
}
