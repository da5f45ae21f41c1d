/**
 * One call of a WAGI guest (a WASI command speaking CGI, wagi.ts): the
 * request in CGI variables and on stdin, the response out of stdout. A large
 * response streams out while the guest writes, a large request body streams
 * in while it reads: JSPI suspends the guest on its blocking reads and writes.
 */

import { OrcaError } from "../../errors.ts";
import { concat } from "../bytes.ts";
import type { WireRequest, WireResponse } from "./executor.ts";
import { type Guest, runCommand } from "./guest.ts";
import { cgiEnv, parseCgiOutput } from "./wagi.ts";
import type { GuestIo } from "./wasi.ts";

/**
 * A WAGI response is buffered until it is this large, then streamed: small
 * responses of a guest that traps become a clean 500, large ones start going
 * out while the guest still writes (it waits while the client reads slowly).
 * A request body larger than this (with a Content-Length) streams in.
 */
export const STREAM_AFTER_BYTES = 64 * 1024;
const STREAM_YIELD_MS = 10;

export interface WagiCall {
  /** The service's declared env (the CGI variables are added to it). */
  env: Record<string, string>;
  req: WireRequest;
  /** Where stderr goes. */
  log: GuestIo & { flush(): void };
  /** Logs a failure after streaming began and names it. */
  failed: (err: unknown) => string;
}

/**
 * Runs a WAGI guest. `response` settles when the guest is done, or (a large
 * response) once it has written STREAM_AFTER_BYTES: then the body streams
 * and `done` settles when the guest is. A failure after streaming began
 * errors the stream; `failed` logs it and names it.
 */
export function serveWagi(
  guest: Guest,
  { env, req, log, failed }: WagiCall,
): { response: Promise<WireResponse>; done: Promise<void> } {
  const body = req.body ?? new Uint8Array();
  const headers = new Headers(req.headers);
  const bodyLength = body instanceof ReadableStream ? Number(headers.get("content-length")) : body.length;
  const out: Uint8Array[] = [];
  let size = 0;
  let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  let wanted: (() => void) | undefined;
  let cancelled = false;
  let yielded = performance.now();
  let startStreaming!: (response: WireResponse) => void;
  let finish!: (failure: string | undefined) => void;
  const streaming = new Promise<WireResponse>((resolve) => startStreaming = resolve);
  const finished = new Promise<string | undefined>((resolve) => finish = resolve);
  const begin = () => {
    const head = parseCgiOutput(concat(out));
    if (!head) throw new OrcaError("wasm", `the handler wrote no CGI header block in its first ${size} bytes`);
    const readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = controller;
      },
      pull: () => {
        wanted?.();
        wanted = undefined;
      },
      cancel: () => {
        cancelled = true;
        wanted?.();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: STREAM_AFTER_BYTES }));
    if (head.body.length > 0) stream!.enqueue(head.body);
    out.length = 0;
    startStreaming({ status: head.status, headers: head.headers, body: readable, finished });
  };
  guest.io = {
    env: { ...env, ...cgiEnv(req.method, new URL(req.url), headers, req.ctx, bodyLength) },
    stdin: body instanceof ReadableStream ? streamReader(body) : body,
    stdout: (bytes) => {
      if (cancelled) throw new OrcaError("unavailable", "the client went away while the response streamed");
      if (stream) {
        stream.enqueue(bytes);
        return;
      }
      size += bytes.length;
      out.push(bytes);
      if (size > STREAM_AFTER_BYTES) begin();
    },
    stderr: log.stderr,
    // Written bytes go out only while the guest waits: when the client has enough queued, and at least every
    // STREAM_YIELD_MS of writing (bytes written just before a long computation wait for the next write or the end).
    drain: () => {
      if (!stream || cancelled) return undefined;
      if ((stream.desiredSize ?? 1) <= 0) return new Promise<void>((r) => wanted = r);
      if (performance.now() - yielded < STREAM_YIELD_MS) return undefined;
      yielded = performance.now();
      return new Promise<void>((r) => setTimeout(r, 0));
    },
  };
  const run = (async () => {
    const code = await runCommand(guest);
    log.flush();
    if (code !== 0) throw new OrcaError("wasm", `the handler exited with code ${code}`);
    if (stream) return undefined;
    const response = parseCgiOutput(concat(out));
    if (!response) {
      throw new OrcaError(
        "wasm",
        "the handler wrote no CGI header block (e.g. `Content-Type: text/plain` and a blank line)",
      );
    }
    return response;
  })();
  const done = run.then(() => {
    if (!cancelled) stream?.close();
    finish(undefined);
  }, (err) => {
    if (!stream) return;
    const failure = failed(err);
    if (!cancelled) stream.error(new Error(failure));
    finish(failure);
  });
  const buffered = run.then((response) => response ?? streaming);
  return { response: Promise.race([streaming, buffered]), done };
}

/** Reads a stream `max` bytes at most at a time; an empty array at its end. */
function streamReader(stream: ReadableStream<Uint8Array>): (max: number) => Uint8Array | Promise<Uint8Array> {
  const reader = stream.getReader();
  let left: Uint8Array = new Uint8Array();
  const take = (max: number) => {
    const chunk = left.subarray(0, max);
    left = left.subarray(chunk.length);
    return chunk;
  };
  const next = async (max: number) => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return new Uint8Array();
      left = value;
      if (left.length > 0) return take(max);
    }
  };
  return (max) => left.length > 0 ? take(max) : next(max);
}
