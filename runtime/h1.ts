/**
 * The proxy's HTTP/1.1 client to its upstreams (container replicas, other servers' proxies): keep-alive
 * connections pooled per address (`h1_conn.ts`), the protocol's bytes read and written here (`h1_head.ts`). Deno's fetch costs
 * more than half of a proxied request's CPU: a proxy made of Deno.serve and fetch reaches 0.35x nginx's req/s on
 * this machine, Deno.serve and this client 0.8x. Bodies pass through as they came (a gzip answer stays gzip).
 *
 * An idle connection keeps a read waiting, so one its server closed leaves the pool as soon as the close arrives;
 * a request that still meets one (the close on its way) is sent again on a fresh connection when it may be sent
 * twice (RFC 9110 9.2.2: an idempotent method or an Idempotency-Key, and a body held whole).
 */

import { Deadline, Deadlines } from "./deadlines.ts";
import { type Conn, connect, readHead } from "./h1_conn.ts";
import { type AnswerHead, chunkSize, parseAnswerHead, ProtocolError, requestHead, UpstreamError } from "./h1_head.ts";

export { UpstreamError } from "./h1_head.ts";

export interface UpstreamRequest {
  method: string;
  /** The path and query (origin form). */
  target: string;
  /**
   * End-to-end headers (a Host among them, or the address is sent as Host). The client frames the body: a streamed
   * one with the Content-Length among them (it must send that many bytes), else chunked.
   */
  headers: Iterable<[string, string]>;
  body?: Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | null;
  /** For the answer's head; a body takes as long as it takes. */
  timeoutMs: number;
}

/** Answers up to this long are read whole and sent on in one write; longer ones stream. */
const BUFFERED_ANSWER = 64 * 1024;
/** Idle connections kept per address (nginx's `keepalive` for the same role), and for how long. */
const MAX_IDLE = 64;
const IDLE_MS = 60_000;
/** Requests with a body up to this long go out in one write with their head. */
const ONE_WRITE = 16 * 1024;
/** Methods a request may be sent with twice (RFC 9110 9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

const encoder = new TextEncoder();

/** Keep-alive connections to upstreams, by address. `close()` ends them all (idle ones at once, busy ones after). */
export class UpstreamPool {
  readonly #idle = new Map<string, Conn[]>();
  readonly #deadlines = new Deadlines();
  #closed = false;

  /** Sends `req` to `hostname:port` and returns its answer, the body streaming on where it is long. */
  async request(hostname: string, port: number, req: UpstreamRequest): Promise<Response> {
    const key = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
    const body = req.body instanceof ArrayBuffer ? new Uint8Array(req.body) : req.body ?? undefined;
    const length = body instanceof Uint8Array ? body.length : body ? declaredLength(req.headers) : undefined;
    const framing = body === undefined ? undefined : length !== undefined ? { length } : { streamed: true as const };
    const head = encoder.encode(requestHead(req.method, req.target, req.headers, key, framing));
    const replayable = !(body instanceof ReadableStream) &&
      (IDEMPOTENT.has(req.method) || [...req.headers].some(([n]) => n.toLowerCase() === "idempotency-key"));
    const timer = new Deadline(req.timeoutMs, this.#deadlines);
    try {
      for (let attempt = 0;; attempt++) {
        const reused = this.#take(key);
        const conn = reused ?? await timer.race(connect(hostname, port, key));
        timer.conn = conn;
        try {
          return await this.#exchange(conn, req.method, head, body, length, timer);
        } catch (err) {
          conn.close();
          if (timer.expired) throw timer.error();
          if (err instanceof UpstreamError) {
            // A kept connection its server had closed (the close still on its way): a fresh one, once more.
            if (reused && err.unanswered && replayable && attempt < 2) continue;
            throw err;
          }
          if (err instanceof ProtocolError) throw new UpstreamError("protocol", err.message);
          throw new UpstreamError("closed", `the connection failed: ${(err as Error).message}`);
        }
      }
    } finally {
      timer.clear();
    }
  }

  /** `request` to `address`, a `host:port` (or `[v6]:port`) as nodes advertise theirs. */
  requestTo(address: string, req: UpstreamRequest): Promise<Response> {
    const at = address.lastIndexOf(":");
    const port = Number(address.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      return Promise.reject(new UpstreamError("connect", `not a host:port address: ${JSON.stringify(address)}`));
    }
    return this.request(address.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port, req);
  }

  /** Closes every idle connection; those in use close when their answer is done. */
  close(): void {
    this.#closed = true;
    this.#deadlines.stop();
    for (const conns of this.#idle.values()) for (const conn of conns) conn.close();
    this.#idle.clear();
  }

  #take(key: string): Conn | undefined {
    const idle = this.#idle.get(key);
    while (idle?.length) {
      const conn = idle.pop()!;
      conn.idle = false;
      if (!conn.closed) {
        conn.tcp.ref();
        return conn;
      }
    }
    return undefined;
  }

  #release(conn: Conn, reusable: boolean): void {
    if (!reusable || this.#closed || conn.closed) return conn.close();
    let idle = this.#idle.get(conn.key);
    if (!idle) this.#idle.set(conn.key, idle = []);
    const now = performance.now();
    while (idle.length > 0 && now - idle[0].idleSince > IDLE_MS) idle.shift()!.close();
    if (idle.length >= MAX_IDLE) return conn.close();
    conn.idle = true;
    conn.idleSince = now;
    conn.tcp.unref();
    idle.push(conn);
    // Waiting for the next answer's bytes already: while idle, any byte or the end means it cannot be used.
    const drop = () => {
      if (!conn.idle) return;
      conn.idle = false;
      conn.close();
      const list = this.#idle.get(conn.key);
      const at = list?.indexOf(conn) ?? -1;
      if (at !== -1) list!.splice(at, 1);
    };
    conn.fill().then(drop, drop);
  }

  async #exchange(
    conn: Conn,
    method: string,
    head: Uint8Array,
    body: Uint8Array | ReadableStream<Uint8Array> | undefined,
    length: number | undefined,
    timer: Deadline,
  ): Promise<Response> {
    let sent = false;
    const sending = send(conn, head, body, length).then(() => {
      sent = true;
    }, (err) => {
      // The request could not be sent whole: the answer, if any, cannot be trusted to follow on this connection.
      conn.close();
      throw err;
    });
    sending.catch(() => {});
    let answer: AnswerHead;
    for (let first = true;; first = false) {
      answer = parseAnswerHead(await readHead(conn, first), method);
      if (answer.status >= 200) break;
      if (answer.status === 101) throw new ProtocolError("101 Switching Protocols to a request that asked for none");
    }
    timer.clear();
    const done = (whole: boolean) => this.#release(conn, whole && sent && answer.keepAlive && conn.buffered === 0);
    const framing = answer.framing;
    let payload: BodyInit | null = null;
    if (framing.kind === "none") done(true);
    else if (framing.kind === "length" && framing.length <= BUFFERED_ANSWER) {
      while (conn.buffered < framing.length) {
        if (await conn.fill() === null) throw new UpstreamError("closed", "the connection closed mid-answer");
      }
      payload = conn.take(framing.length);
      done(true);
    } else payload = streamBody(conn, framing, done);
    try {
      return new Response(payload, { status: answer.status, statusText: answer.reason, headers: answer.headers });
    } catch (err) {
      if (payload instanceof ReadableStream) payload.cancel().catch(() => {});
      throw new ProtocolError(`an answer that cannot be passed on: ${(err as Error).message}`);
    }
  }
}

/** The Content-Length among `headers`, when it is one. */
function declaredLength(headers: Iterable<[string, string]>): number | undefined {
  for (const [name, value] of headers) {
    if (name.toLowerCase() === "content-length") return /^\d{1,15}$/.test(value) ? Number(value) : undefined;
  }
  return undefined;
}

/** Writes the head and the body, framed as the head says. */
async function send(
  conn: Conn,
  head: Uint8Array,
  body: Uint8Array | ReadableStream<Uint8Array> | undefined,
  length: number | undefined,
): Promise<void> {
  if (body === undefined) return await conn.write(head);
  if (body instanceof Uint8Array) {
    if (body.length > ONE_WRITE) {
      await conn.write(head);
      return await conn.write(body);
    }
    const both = new Uint8Array(head.length + body.length);
    both.set(head);
    both.set(body, head.length);
    return await conn.write(both);
  }
  await conn.write(head);
  let left = length;
  for await (const chunk of body) {
    if (chunk.length === 0) continue;
    if (left !== undefined) {
      if (chunk.length > left) throw new Error("the request body is longer than its content-length");
      left -= chunk.length;
      await conn.write(chunk);
    } else {
      const size = encoder.encode(`${chunk.length.toString(16)}\r\n`);
      const framed = new Uint8Array(size.length + chunk.length + 2);
      framed.set(size);
      framed.set(chunk, size.length);
      framed.set([13, 10], size.length + chunk.length);
      await conn.write(framed);
    }
  }
  if (left !== undefined && left > 0) throw new Error("the request body is shorter than its content-length");
  if (left === undefined) await conn.write(encoder.encode("0\r\n\r\n"));
}

/** An answer's body as a stream off the connection; `done(whole)` hands the connection back at its end. */
function streamBody(
  conn: Conn,
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" },
  done: (whole: boolean) => void,
): ReadableStream<Uint8Array> {
  let left = framing.kind === "length" ? framing.length : 0;
  let chunkLeft = -1; // chunked: bytes left of the current chunk; -1 before a size line
  let finished = false;
  const finish = (controller: ReadableStreamDefaultController<Uint8Array>, whole: boolean) => {
    finished = true;
    controller.close();
    done(whole);
  };
  const more = async () => {
    if (await conn.fill() === null) {
      if (framing.kind === "close") return false;
      throw new Error("the upstream closed the connection mid-answer");
    }
    return true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (framing.kind === "chunked") {
          if (chunkLeft <= 0) {
            if (chunkLeft === 0 && await conn.line(2) !== "") throw new ProtocolError("a chunk not ended by CRLF");
            chunkLeft = chunkSize(await conn.line(4096));
            if (chunkLeft === 0) {
              // Trailers, up to the blank line: read and dropped.
              for (let lines = 0;; lines++) {
                if (await conn.line(16 * 1024) === "") break;
                if (lines > 64) throw new ProtocolError("too many trailer lines");
              }
              return finish(controller, true);
            }
          }
          if (conn.buffered === 0) await more();
          const n = Math.min(chunkLeft, conn.buffered);
          chunkLeft -= n;
          return controller.enqueue(conn.take(n));
        }
        if (conn.buffered === 0 && !(await more())) return finish(controller, false);
        const n = framing.kind === "length" ? Math.min(left, conn.buffered) : conn.buffered;
        left -= n;
        controller.enqueue(conn.take(n));
        if (framing.kind === "length" && left === 0) finish(controller, true);
      } catch (err) {
        finished = true;
        conn.close();
        controller.error(err);
      }
    },
    cancel() {
      if (!finished) conn.close();
    },
  });
}
