/**
 * HTTP bodies between a guest and the client, for both kinds of HTTP guest
 * (WAGI in wagi_call.ts, wasi:http in http_call.ts): a response body the
 * guest writes, held until it is large enough to stream and then streamed
 * with backpressure; and a request body the guest reads as it arrives.
 */

import { OrcaError } from "../../errors.ts";
import { concat } from "../bytes.ts";
import type { WireRequest, WireResponse } from "./backend.ts";
import type { GuestIo } from "./wasi.ts";

/**
 * A response is buffered until it is this large, then streamed: small
 * responses of a guest that traps become a clean 500, large ones start going
 * out while the guest still writes (it waits while the client reads slowly).
 * A request body larger than this (or one of unknown length) streams in.
 */
export const STREAM_AFTER_BYTES = 64 * 1024;
/** While streaming, bytes written go out at least this often (the guest yields on its blocking writes). */
const STREAM_YIELD_MS = 10;

/** A response body as the guest writes it: buffered at first, then (`stream`) a stream the client reads. */
export class ResponseBody {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  #wanted?: () => void;
  #cancelled = false;
  #stopped = false;
  #ended = false;
  #yielded = 0;
  /** Called after each write: where the call decides to start streaming. */
  onWrite?: () => void;

  /** Whether the body streams (the response has gone out). */
  get streaming(): boolean {
    return this.#controller !== undefined;
  }

  /** Bytes buffered, not yet streamed. */
  get size(): number {
    return this.#size;
  }

  write(bytes: Uint8Array): void {
    if (this.#cancelled) throw new OrcaError("unavailable", "the client went away while the response streamed");
    if (this.#stopped) throw new OrcaError("unavailable", "the call's deadline passed");
    if (this.#controller) {
      this.#controller.enqueue(bytes);
    } else {
      this.#chunks.push(bytes);
      this.#size += bytes.length;
    }
    this.onWrite?.();
  }

  /** Takes the buffered bytes out. */
  take(): Uint8Array {
    const all = concat(this.#chunks);
    this.#chunks = [];
    this.#size = 0;
    return all;
  }

  /** Starts streaming: `first`, what is still buffered, then every later write go to the returned stream. */
  stream(first?: Uint8Array): ReadableStream<Uint8Array> {
    const buffered = this.take();
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        if (first && first.length > 0) controller.enqueue(first);
        if (buffered.length > 0) controller.enqueue(buffered);
      },
      pull: () => this.#wake(),
      cancel: () => {
        this.#cancelled = true;
        this.#wake();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: STREAM_AFTER_BYTES }));
  }

  /**
   * How many bytes the guest may write now (wasi:http check-write): none while
   * the client has enough queued; `buffering` before the response starts.
   */
  permit(buffering: number): number {
    if (this.#cancelled || this.#stopped) return STREAM_AFTER_BYTES; // the write then fails: the guest learns why
    if (!this.#controller) return buffering;
    return Math.max(0, this.#controller.desiredSize ?? 0);
  }

  /** Settles when the client wants more, or went away. */
  writable(): Promise<void> {
    if (this.#cancelled || this.#stopped || (this.#controller?.desiredSize ?? 0) > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const before = this.#wanted;
      this.#wanted = () => {
        before?.();
        resolve();
      };
    });
  }

  /**
   * After a blocking write: a promise the guest waits on (suspended by JSPI, so
   * the response streams out meanwhile) while the client has enough queued, and
   * at least every STREAM_YIELD_MS of writing. Bytes written just before a long
   * computation wait for the next blocking write or the end.
   */
  drain(): Promise<void> | undefined {
    if (!this.#controller || this.#cancelled || this.#stopped) return undefined;
    if ((this.#controller.desiredSize ?? 1) <= 0) return this.writable();
    if (performance.now() - this.#yielded < STREAM_YIELD_MS) return undefined;
    this.#yielded = performance.now();
    return new Promise<void>((resolve) => setTimeout(resolve, 0));
  }

  /**
   * The call's deadline passed: a guest waiting for the client resumes (its
   * interrupt check then stops it) and its writes fail from now on.
   */
  stop(): void {
    this.#stopped = true;
    this.#wake();
  }

  /** The guest finished the body (when it returns, or earlier: wasi:http's outgoing-body.finish). */
  close(): void {
    if (this.#cancelled || this.#ended || !this.#controller) return;
    this.#ended = true;
    this.#controller.close();
  }

  /** The guest failed after streaming began: the client's stream errors with `failure` (unless it is complete). */
  fail(failure: string): void {
    if (this.#cancelled || this.#ended || !this.#controller) return;
    this.#ended = true;
    this.#controller.error(new Error(failure));
  }

  #wake(): void {
    const wanted = this.#wanted;
    this.#wanted = undefined;
    wanted?.();
  }
}

/** One HTTP guest call, as the executor hands it to wagi_call.ts or http_call.ts. */
export interface HttpGuestCall {
  req: WireRequest;
  /** Where the guest's stdout and stderr go. */
  log: GuestIo & { flush(): void };
  /** Logs a failure after streaming began and names it. */
  failed: (err: unknown) => string;
  /** When the call's deadline passes (performance.now() time). */
  deadline: number;
}

/** Starts streaming a response: its status, headers and body (`first` goes out before what is buffered). */
export type BeginStreaming = (
  status: number,
  headers: [string, string][],
  body: ResponseBody,
  first?: Uint8Array,
) => void;

/** An HTTP guest call under way. */
export interface StreamingCall {
  /** Settles with the response: when the guest is done, or when its body began streaming. */
  response: Promise<WireResponse>;
  /** Settles when the guest is done. */
  done: Promise<void>;
  /** At the call's deadline: ends the guest's waits on the client (a slow reader, a slow upload). */
  stop(): void;
}

/**
 * An HTTP guest call whose response may stream. `run` calls the guest and
 * settles with the whole response, or with nothing once it has called `begin`.
 * `response` settles with the response (when the guest is done, or when it
 * began streaming); `done` when the guest is done. A failure after streaming
 * began errors the client's stream; `failed` logs it and names it. The guest
 * reads the request from `requestBody`.
 */
export function streamingCall(
  run: (begin: BeginStreaming) => Promise<WireResponse | undefined>,
  failed: (err: unknown) => string,
  requestBody: BodyReader,
): StreamingCall {
  let streamed: ResponseBody | undefined;
  let startStreaming!: (response: WireResponse) => void;
  let finish!: (failure: string | undefined) => void;
  const streaming = new Promise<WireResponse>((resolve) => startStreaming = resolve);
  const finished = new Promise<string | undefined>((resolve) => finish = resolve);
  let stopped = false;
  const call = run((status, headers, body, first) => {
    streamed = body;
    startStreaming({ status, headers, body: body.stream(first), finished });
  }).then((response) => {
    // Woken at its deadline, the guest may finish before its interrupt check: its answer is not whole.
    if (stopped) throw new OrcaError("unavailable", "the call's deadline passed while it waited for the client");
    return response;
  });
  const done = call.then(() => {
    streamed?.close();
    requestBody.cancel(); // what the guest did not read of the request is not wanted
    finish(undefined);
  }, (err) => {
    requestBody.cancel();
    if (!streamed) return;
    const failure = failed(err);
    streamed.fail(failure);
    finish(failure);
  });
  const buffered = call.then((response) => response ?? streaming);
  const stop = () => {
    stopped = true;
    requestBody.stop();
    streamed?.stop();
  };
  return { response: Promise.race([streaming, buffered]), done, stop };
}

/** A request body the guest reads: whole, or a stream it reads as the client sends it. */
export class BodyReader {
  #left: Uint8Array;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #pending?: Promise<void>;
  #wake?: () => void;
  #ended: boolean;
  #error?: Error;

  constructor(body: Uint8Array | ReadableStream<Uint8Array> | null) {
    if (body instanceof ReadableStream) {
      this.#left = new Uint8Array();
      this.#reader = body.getReader();
      this.#ended = false;
    } else {
      this.#left = body ?? new Uint8Array();
      this.#ended = true;
    }
  }

  /** Whether a read would not wait: bytes are here, or the body is over. */
  ready(): boolean {
    return this.#left.length > 0 || this.#ended;
  }

  /** What is here now, up to `max` bytes; empty when nothing is yet, `undefined` at the end. Throws if the client's body broke off. */
  read(max: number): Uint8Array | undefined {
    if (this.#error) throw this.#error;
    if (this.#left.length > 0) {
      const chunk = this.#left.subarray(0, max);
      this.#left = this.#left.subarray(chunk.length);
      return chunk;
    }
    if (this.#ended) return undefined;
    this.wait();
    return new Uint8Array();
  }

  /** Up to `max` bytes, waiting for them if none are here; `undefined` at the end. */
  blockingRead(max: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (this.ready()) return this.read(max);
    return this.wait().then(() => this.read(max));
  }

  /** Settles once a read would not wait. */
  wait(): Promise<void> {
    if (this.ready()) return Promise.resolve();
    this.#pending ??= Promise.race([
      this.#next(),
      new Promise<void>((resolve) => this.#wake = resolve),
    ]).finally(() => this.#pending = this.#wake = undefined);
    return this.#pending;
  }

  /** Stops reading (the guest dropped the body): the client's stream is cancelled, a wait ends. */
  cancel(): void {
    this.#ended = true;
    this.#left = new Uint8Array();
    this.#reader?.cancel().catch(() => {});
    this.#wake?.(); // a pending read of a cancelled stream does not always settle
  }

  /** The call's deadline passed: a wait ends, and reads fail (the guest must not take the body for whole). */
  stop(): void {
    this.#error ??= new Error("the call's deadline passed while it waited for the request body");
    this.cancel();
  }

  async #next(): Promise<void> {
    try {
      while (!this.ready()) {
        const { value, done } = await this.#reader!.read();
        if (done) this.#ended = true;
        else this.#left = value;
      }
    } catch (err) {
      this.#ended = true;
      this.#error = new Error(`the request body broke off: ${(err as Error).message}`);
    }
  }
}
