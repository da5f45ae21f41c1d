/**
 * The bytes of HTTP/1.1 (RFC 9112) that the upstream client reads and writes: a request's head out, an answer's
 * head in, checked strictly. Anything an upstream sends that a careful reader would have to guess at (a folded
 * line, a header name that is not a token, two lengths, a length beside chunked framing) is refused, never
 * guessed: the answer is a 502, the connection closed.
 */

import { connectionNames, withoutHopByHop } from "./upstream.ts";

/** What an upstream's answer head says, checked. */
export interface AnswerHead {
  status: number;
  reason: string;
  /** End to end only: without the hop-by-hop ones and any that `Connection` names. */
  headers: [string, string][];
  /** How the body is framed: a length, chunked, until the connection closes, or none. */
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" } | { kind: "none" };
  /** The connection may carry another request after this answer. */
  keepAlive: boolean;
}

/** How a request to an upstream failed: it could not connect, the connection ended unanswered, no answer in time. */
export type UpstreamFailure = "connect" | "closed" | "timeout" | "protocol";

export class UpstreamError extends Error {
  /** `unanswered`: the connection ended before a byte of an answer came (the request may not have been seen). */
  constructor(readonly kind: UpstreamFailure, message: string, readonly unanswered = false) {
    super(message);
    this.name = "UpstreamError";
  }
}

/** A head (or chunk line) that breaks the rules: the connection cannot go on. */
export class ProtocolError extends Error {}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const LENGTH = /^\d{1,15}$/;
const LINE_END = /\r?\n/;

/** Bytes as Latin-1, a character per byte (TextDecoder's "latin1" is windows-1252, which is not). */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/**
 * The end of the head that starts at `from` (the index after its blank line), or -1 while it is incomplete. A bare
 * LF ends a line too (RFC 9112 2.2: busybox's httpd passes a CGI's LF-only head on as it is).
 */
export function headEnd(buf: Uint8Array, from: number, to: number): number {
  let i = buf.indexOf(10, from);
  while (i !== -1 && i < to) {
    if (i > from && (buf[i - 1] === 10 || (buf[i - 1] === 13 && i > from + 1 && buf[i - 2] === 10))) return i + 1;
    i = buf.indexOf(10, i + 1);
  }
  return -1;
}

/**
 * Parses an answer's head (`text` ends with its blank line). `method` is the request's: the answer to a HEAD has
 * no body whatever it says.
 */
export function parseAnswerHead(text: string, method: string): AnswerHead {
  const lines = text.split(LINE_END);
  // The head ends with an empty line, so the last two entries are empty.
  const status = STATUS_LINE.exec(lines[0]);
  if (!status) throw new ProtocolError(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const code = Number(status[2]);
  const pairs: [string, string][] = [];
  let length: string | undefined;
  let chunked = false;
  let connection = "";
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new ProtocolError(`a header line without a name: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new ProtocolError(`a header name that is not a token: ${JSON.stringify(name)}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (/[\0\n\r]/.test(value)) throw new ProtocolError(`header ${name}: a value with a control character`);
    if (name === "content-length") {
      if (!LENGTH.test(value) || (length !== undefined && length !== value)) {
        throw new ProtocolError(`content-length: ${JSON.stringify(value)} is not one length`);
      }
      length = value;
    } else if (name === "transfer-encoding") {
      // Only chunked framing is read: a coding under it (gzip, chunked) would reach the client undecoded and unsaid.
      if (chunked || value.toLowerCase() !== "chunked") {
        throw new ProtocolError(`transfer-encoding: ${JSON.stringify(value)}: only one "chunked" is passed on`);
      }
      chunked = true;
    } else if (name === "connection") connection += `,${value}`;
    pairs.push([name, value]);
  }
  if (chunked && length !== undefined) {
    throw new ProtocolError("both content-length and transfer-encoding: the answer's length is ambiguous");
  }
  const named = connectionNames(connection);
  const headers = withoutHopByHop(pairs, named);
  const keepAlive = status[1] === "1" ? !named.has("close") : named.has("keep-alive");
  const framing: AnswerHead["framing"] =
    method === "HEAD" || code === 204 || code === 304 || (code >= 100 && code < 200)
      ? { kind: "none" }
      : chunked
      ? { kind: "chunked" }
      : length !== undefined
      ? { kind: "length", length: Number(length) }
      : { kind: "close" };
  return { status: code, reason: status[3] ?? "", headers, framing, keepAlive: keepAlive && framing.kind !== "close" };
}

/** The size a chunk line (`1a;ext=1`, its CRLF cut) gives. */
export function chunkSize(line: string): number {
  const hex = /^([0-9a-fA-F]{1,12})[ \t]*(;[^\r\n]*)?$/.exec(line);
  if (!hex) throw new ProtocolError(`not a chunk size: ${JSON.stringify(line.slice(0, 40))}`);
  return parseInt(hex[1], 16);
}

/**
 * A request's head: `headers` are the end-to-end ones to send (the caller's), with the framing this client chose
 * (`length`, or chunked when undefined and `streamed`) and a Host if they have none.
 */
export function requestHead(
  method: string,
  target: string,
  headers: Iterable<[string, string]>,
  authority: string,
  body: { length: number } | { streamed: true } | undefined,
): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let host = false;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === "content-length" || lower === "transfer-encoding") continue;
    if (lower === "host") host = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!host) head += `host: ${authority}\r\n`;
  if (body === undefined) {
    if (method === "POST" || method === "PUT" || method === "PATCH") head += "content-length: 0\r\n";
  } else if ("length" in body) head += `content-length: ${body.length}\r\n`;
  else head += "transfer-encoding: chunked\r\n";
  return head + "\r\n";
}
