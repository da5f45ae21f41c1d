/**
 * The proxy's access log: one JSON line per request answered (service,
 * method, host, path, status, duration, response bytes, client), kept in a
 * bounded ring that `orca logs --access` reads and follows. A response whose
 * length is not known up front is counted as it streams and logged when it
 * ends.
 */

import { clipLine, LogBuffer } from "../runtime/logs.ts";
import type { LogLine, LogOpts } from "../runtime/types.ts";

/** Lines kept per node (the oldest go first). */
export const ACCESS_LINES = 10_000;

/** What the proxy knows of a request when it answers it. */
export interface AccessEntry {
  /** `project/name`, or `-` for a request no service answered (no route, bad request). */
  service: string;
  method: string;
  host: string;
  path: string;
  proto: "http" | "https";
  client?: string;
}

export class AccessLog {
  readonly #lines: LogBuffer;
  /** Requests taken (`begin`) and not yet answered whole: a streamed answer counts until its body ends. */
  inFlight = 0;
  /** Called for each answer as it is logged (the node's metrics). */
  onAnswered?: (service: string, status: number, ms: number) => void;

  constructor(capacity = ACCESS_LINES) {
    this.#lines = new LogBuffer(capacity);
  }

  /** A request was taken: returns the time it started, for `answered`. */
  begin(): number {
    this.inFlight++;
    return performance.now();
  }

  /** A request taken ended without an answer to log. */
  abandon(): void {
    this.inFlight--;
  }

  /** Logs `response` to `entry` (now, or when its body of unknown length ends); returns what to send. */
  answered(entry: AccessEntry, response: Response, started: number): Response {
    // `body` is not read when the length is known: reading it turns a body held whole into a stream, which goes
    // out in writes of its own (on TLS, each held back until the client acknowledges the last: 40 ms).
    const length = response.headers.get("content-length");
    if (length !== null || response.body === null) {
      this.#write(entry, response.status, started, length === null ? 0 : Number(length));
      return response;
    }
    let bytes = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.#write(entry, response.status, started, bytes);
    };
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          bytes += chunk.byteLength;
          controller.enqueue(chunk);
        },
        flush: finish,
        cancel: finish,
      }),
    );
    return new Response(counted, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  /** The lines kept (and, following, those to come), of one service when `service` is given. */
  async *read(service: string | undefined, opts: LogOpts = {}): AsyncGenerator<LogLine> {
    const prefix = service === undefined ? undefined : `{"service":${JSON.stringify(service)},`;
    for await (const line of this.#lines.read(opts)) {
      if (prefix === undefined || line.text.startsWith(prefix)) yield line;
    }
  }

  #write(e: AccessEntry, status: number, started: number, bytes: number): void {
    const ms = Math.round((performance.now() - started) * 100) / 100;
    this.#lines.appendLine(new AccessLine(Date.now(), e, status, ms, bytes));
    this.inFlight--;
    this.onAnswered?.(e.service, status, ms);
  }
}

/** An access log line, written as JSON when first read (most are never read): nothing per request but the fields. */
class AccessLine implements LogLine {
  readonly stream = "system";
  readonly at: number;
  readonly #entry: AccessEntry;
  readonly #status: number;
  readonly #ms: number;
  readonly #bytes: number;
  #text?: string;

  constructor(at: number, entry: AccessEntry, status: number, ms: number, bytes: number) {
    this.at = at;
    this.#entry = entry;
    this.#status = status;
    this.#ms = ms;
    this.#bytes = bytes;
  }

  get text(): string {
    if (this.#text !== undefined) return this.#text;
    const e = this.#entry;
    const line = {
      service: e.service,
      method: e.method,
      host: e.host,
      path: e.path,
      status: this.#status,
      ms: this.#ms,
      bytes: this.#bytes,
      proto: e.proto,
      ...(e.client !== undefined && { client: e.client }),
    };
    return this.#text = clipLine(JSON.stringify(line));
  }

  toJSON(): LogLine {
    return { at: this.at, stream: this.stream, text: this.text };
  }
}
