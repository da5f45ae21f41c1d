/**
 * One call of a wasi:http guest (a wasi:http/incoming-handler component,
 * e.g. componentize-js): the request as an incoming-request whose body the
 * guest reads as it arrives, the response out of an outgoing-response whose
 * body streams out as the guest writes it (body.ts), with backpressure through
 * check-write and its pollable.
 *
 * preview2-shim's own incoming path (handleIncomingRequest) reads the whole
 * request first and answers only once the body is finished, so the incoming
 * half of wasi:http/types is ours. The shim's classes still serve outgoing
 * requests; where a resource type is shared by both halves (outgoing-body,
 * incoming-body), ours extends the shim's and accepts the shim's objects too.
 */

import { OrcaError } from "../../errors.ts";
import {
  BodyReader,
  type HttpGuestCall,
  ResponseBody,
  STREAM_AFTER_BYTES,
  type StreamingCall,
  streamingCall,
} from "./body.ts";
import type { WireRequest } from "./backend.ts";
import type { Guest } from "./guest.ts";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/io.d.ts"
import * as io from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/io.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/http.d.ts"
import * as http from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/http.js";

/** A response body written before the response is set is held up to this much; the guest then waits. */
const MAX_UNANSWERED_BYTES = 32 * 1024 * 1024;
/** The most one check-write permits before the response has started. */
const BUFFERED_PERMIT = 1024 * 1024;

type Fields = InstanceType<typeof http.types.Fields>;
/** The shim's classes as this file extends them (their declared constructors are private). */
const shim = http.types as unknown as {
  Fields: typeof http.types.Fields;
  FutureTrailers: new () => object;
  OutgoingBody: (new () => object) & { finish(body: unknown, trailers: unknown): void };
  IncomingBody: (new () => object) & { finish(body: unknown): object };
  OutgoingResponse: new (headers: Fields) => {
    statusCode(): number;
    headers(): Fields;
  };
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const closed = { tag: "closed" };

/** Whether `value` is an object of `base` (ours or the shim's): the instance check jco's glue makes. */
function isShimObject(base: abstract new () => object, value: unknown): boolean {
  return Function.prototype[Symbol.hasInstance].call(base, value);
}

/** outgoing-body: a response body streams to the client; a request body (the shim's) goes to fetch. */
class OutgoingBody extends shim.OutgoingBody {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isShimObject(shim.OutgoingBody, value);
  }

  readonly #body: ResponseBody;
  #stream: unknown = undefined;
  #finished = false;

  constructor(body: ResponseBody) {
    super();
    this.#body = body;
  }

  /** The body's one output stream. */
  write(): unknown {
    if (this.#stream === null) throw undefined;
    if (this.#stream === undefined) {
      const body = this.#body;
      const check = () => {
        if (this.#finished) throw closed;
      };
      this.#stream = io.outputStreamCreate({
        checkWrite: () => {
          check();
          return BigInt(body.permit(BUFFERED_PERMIT));
        },
        write: (bytes: Uint8Array) => {
          check();
          writeTo(body, bytes);
        },
        // blocking-write-and-flush is an async import: while the client has enough queued, the guest waits.
        blockingWriteAndFlush: (bytes: Uint8Array) => {
          check();
          writeTo(body, bytes);
          return body.drain() as unknown as void;
        },
        flush: () => {},
        blockingFlush: () => {},
        subscribe: () => io.pollableCreate({ ready: () => body.permit(1) > 0, wait: () => body.writable() }),
      });
      // The shim's blocking-splice reads its source synchronously; a streamed request body (the usual source) may
      // have to wait, and so may this body's client.
      Object.assign(this.#stream as object, {
        blockingSplice: async (src: { blockingRead(len: bigint): Uint8Array | Promise<Uint8Array> }, len: bigint) => {
          check();
          if (body.permit(1) === 0) await body.writable();
          const bytes = await src.blockingRead(BigInt(Math.min(Number(len), body.permit(BUFFERED_PERMIT))));
          writeTo(body, bytes);
          return BigInt(bytes.length);
        },
      });
    }
    const stream = this.#stream;
    this.#stream = null;
    return stream;
  }

  /** Whether the guest finished the body (a response body that is not finished when the handler returns is cut short). */
  get finished(): boolean {
    return this.#finished;
  }

  static override finish(body: unknown, trailers: unknown): void {
    if (!(body instanceof OutgoingBody && #body in body)) return shim.OutgoingBody.finish(body, trailers);
    if (trailers) throw { tag: "internal-error", val: "trailers are not supported" };
    if (body.#finished) throw { tag: "internal-error", val: "body already finished" };
    body.#finished = true;
    body.#body.close(); // a streaming response ends now, not when the handler returns
  }
}

function writeTo(body: ResponseBody, bytes: Uint8Array): void {
  if (!body.streaming && body.size + bytes.length > MAX_UNANSWERED_BYTES) {
    const why = `over ${MAX_UNANSWERED_BYTES >> 20} MiB of response body written before the response was set`;
    throw { tag: "last-operation-failed", val: io.ioErrorCreate(why) };
  }
  try {
    body.write(bytes.slice());
  } catch {
    throw closed; // the client went away
  }
}

/** outgoing-response: what the guest answers. */
class OutgoingResponse extends shim.OutgoingResponse {
  readonly content = new ResponseBody();
  readonly #body: OutgoingBody;
  #bodyTaken = false;

  constructor(headers: Fields) {
    super(headers); // locks the headers
    this.#body = new OutgoingBody(this.content);
  }

  body(): OutgoingBody {
    if (this.#bodyTaken) throw undefined;
    this.#bodyTaken = true;
    return this.#body;
  }

  /** Whether the body is complete: never asked for (empty), or finished. */
  get complete(): boolean {
    return !this.#bodyTaken || this.#body.finished;
  }

  /** The headers as text. */
  headerList(): [string, string][] {
    return this.headers().entries().map(([name, value]) => [name, decoder.decode(value)]);
  }
}

type Answer = { tag: "ok"; val: OutgoingResponse } | { tag: "err"; val: unknown };

/** response-outparam: where the guest's answer goes. */
class ResponseOutparam {
  readonly #set: (answer: Answer) => void;
  #used = false;

  constructor(set: (answer: Answer) => void) {
    this.#set = set;
  }

  static set(param: ResponseOutparam, answer: Answer): void {
    if (param.#used) throw new Error("response-outparam already set");
    if (answer.tag === "ok" && !(answer.val instanceof OutgoingResponse)) {
      throw new TypeError("not an outgoing-response");
    }
    param.#used = true;
    param.#set(answer);
  }

  [Symbol.dispose](): void {}
}

/** incoming-body: a request body read as it arrives; a response body of an outgoing request (the shim's). */
class IncomingBody extends shim.IncomingBody {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isShimObject(shim.IncomingBody, value);
  }

  #stream: unknown;
  #finished = false;

  constructor(reader: BodyReader) {
    super();
    const read = (bytes: Uint8Array | undefined) => {
      if (bytes === undefined) throw closed;
      return bytes;
    };
    const failed = (err: unknown) => {
      if (err === closed) throw err;
      throw { tag: "last-operation-failed", val: io.ioErrorCreate((err as Error).message) };
    };
    const attempt = <T>(f: () => T): T => {
      try {
        return f();
      } catch (err) {
        return failed(err);
      }
    };
    this.#stream = io.inputStreamCreate({
      read: (len: bigint) => attempt(() => read(reader.read(Number(len)))),
      // blocking-read is an async import: waiting for the client's next bytes suspends the guest.
      blockingRead: (len: bigint) =>
        attempt(() => {
          const bytes = reader.blockingRead(Number(len));
          return (bytes instanceof Promise ? bytes.then(read).catch(failed) : read(bytes)) as Uint8Array;
        }),
      blockingSkip: (len: bigint) =>
        attempt(() => {
          const bytes = reader.blockingRead(Number(len));
          const skipped = (b: Uint8Array | undefined) => BigInt(read(b).length);
          return (bytes instanceof Promise ? bytes.then(skipped).catch(failed) : skipped(bytes)) as bigint;
        }),
      subscribe: () => io.pollableCreate({ ready: () => reader.ready(), wait: () => reader.wait() }),
      drop: () => reader.cancel(),
    });
  }

  stream(): unknown {
    if (this.#stream === null) throw undefined;
    const stream = this.#stream;
    this.#stream = null;
    return stream;
  }

  static override finish(body: unknown): object {
    if (!(body instanceof IncomingBody && #finished in body)) return shim.IncomingBody.finish(body);
    if (body.#finished) throw new Error("incoming body already finished");
    body.#finished = true;
    return new shim.FutureTrailers();
  }
}

const knownMethods = new Set(["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"]);

/** incoming-request: the request as the guest sees it. */
class IncomingRequest {
  readonly #method: string;
  readonly #url: URL;
  readonly #headers: Fields;
  #body: IncomingBody | undefined;

  constructor(method: string, url: URL, headers: Fields, body: IncomingBody) {
    this.#method = method;
    this.#url = url;
    this.#headers = headers;
    this.#body = body;
  }

  method(): { tag: string; val?: string } {
    const lower = this.#method.toLowerCase();
    return knownMethods.has(lower) ? { tag: lower } : { tag: "other", val: this.#method };
  }

  pathWithQuery(): string {
    return `${this.#url.pathname}${this.#url.search}`;
  }

  scheme(): { tag: string; val?: string } {
    if (this.#url.protocol === "http:") return { tag: "HTTP" };
    if (this.#url.protocol === "https:") return { tag: "HTTPS" };
    return { tag: "other", val: this.#url.protocol.slice(0, -1) };
  }

  authority(): string {
    return this.#url.host;
  }

  headers(): Fields {
    return this.#headers;
  }

  consume(): IncomingBody {
    const body = this.#body;
    if (!body) throw undefined;
    this.#body = undefined;
    return body;
  }

  [Symbol.dispose](): void {}
}

/** wasi:http/types for guests: the shim's, with the incoming half replaced by the classes above. */
export const httpTypes: Record<string, unknown> = {
  ...http.types,
  IncomingBody,
  IncomingRequest,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
};

/**
 * Runs a wasi:http guest. `response` settles when the guest is done, or (a
 * large response) once it has set its response and written STREAM_AFTER_BYTES
 * of the body: then the body streams and `done` settles when the guest is.
 */
export function serveWasiHttp(
  guest: Guest,
  { req, log, failed, deadline }: HttpGuestCall,
): StreamingCall {
  const reader = new BodyReader(req.body);
  return streamingCall(
    async (begin) => {
      if (guest.exports.kind !== "http") throw new OrcaError("internal", "not a wasi:http guest");
      let answer: Answer | undefined;
      const startIfLarge = () => {
        if (answer?.tag !== "ok") return;
        const response = answer.val;
        if (response.content.streaming || response.content.size <= STREAM_AFTER_BYTES) return;
        begin(response.statusCode(), response.headerList(), response.content);
      };
      const outparam = new ResponseOutparam((set) => {
        answer = set;
        if (set.tag === "ok") set.val.content.onWrite = startIfLarge;
        startIfLarge();
      });
      const headers = http.types.Fields.fromList(
        guestHeaders(req).map(([name, value]) => [name, encoder.encode(value)]),
      );
      new shim.OutgoingResponse(headers); // the shim keeps its lock private: this locks the headers, as WASI says
      const request = new IncomingRequest(req.method, new URL(req.url), headers, new IncomingBody(reader));
      guest.io = { ...log, deadline };
      await guest.exports.handle(request as never, outparam as never);
      log.flush();
      if (!answer) {
        throw new OrcaError("wasm", "the handler returned without setting its response (response-outparam.set)");
      }
      if (answer.tag === "err") {
        // Error codes carry u64 fields (BigInt in JS).
        const text = JSON.stringify(answer.val, (_key, v) => typeof v === "bigint" ? v.toString() : v);
        throw new OrcaError("wasm", `the handler answered with an error: ${text}`);
      }
      const response = answer.val;
      if (!response.complete) {
        throw new OrcaError("wasm", "the handler returned before finishing its response body (outgoing-body.finish)");
      }
      if (response.content.streaming) return undefined;
      return { status: response.statusCode(), headers: response.headerList(), body: response.content.take() };
    },
    failed,
    reader,
  );
}

/** Connection-level headers: not the guest's (its authority is the request's, not a Host header). */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "host",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * The request's headers as the guest sees them: without connection-level ones, with route parameters as
 * x-orca-param-* and the route as x-orca-route (only the router sets these: a client's own are dropped).
 */
function guestHeaders(req: WireRequest): [string, string][] {
  const headers = req.headers.filter(([name]) => !hopByHop.has(name) && !/^x-orca-(param-|route$)/.test(name));
  for (const [name, value] of Object.entries(req.ctx.params)) headers.push([`x-orca-param-${name}`, value]);
  headers.push(["x-orca-route", req.ctx.route]);
  return headers;
}
