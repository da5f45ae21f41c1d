/**
 * Framing between the server and its guest host processes (host.ts): each
 * message is `[u32 frame length][u32 JSON length][JSON][bytes]`, where every
 * Uint8Array in the value travels raw in the bytes part and the JSON holds
 * `{"$bin": [offset, length]}` in its place. Bodies are not base64'd.
 */

import { concat } from "../bytes.ts";

const BIN = "$bin";
/** A frame larger than this is refused (request and response bodies are capped well below it). */
export const MAX_FRAME = 256 * 1024 * 1024;

/** The JSON length's top bit: the frame has byte arrays (their markers must be put back). */
const HAS_BINS = 0x8000_0000;

/**
 * One message as a frame. Byte arrays are swapped for markers by a walk of
 * the value, not a JSON.stringify replacer (which sends every value through
 * V8's slow path); a frame without any says so, and is decoded by JSON.parse
 * alone.
 */
export function encodeFrame(value: unknown): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const swap = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof Uint8Array) {
      parts.push(v);
      const marker = { [BIN]: [offset, v.length] };
      offset += v.length;
      return marker;
    }
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const item = swap(v[i]);
        if (item !== v[i]) (out ??= v.slice())[i] = item;
      }
      return out ?? v;
    }
    if (typeof (v as { toJSON?: unknown }).toJSON === "function") return v;
    let out: Record<string, unknown> | undefined;
    for (const key in v) {
      const field = (v as Record<string, unknown>)[key];
      const item = swap(field);
      if (item !== field) (out ??= { ...v as Record<string, unknown> })[key] = item;
    }
    return out ?? v;
  };
  const json = JSON.stringify(swap(value));
  const head = encoder.encode(json);
  if (head.length >= HAS_BINS) throw new Error(`a message of ${head.length} bytes of JSON is too large to frame`);
  const frame = new Uint8Array(8 + head.length + offset);
  const view = new DataView(frame.buffer);
  view.setUint32(0, frame.length - 4);
  view.setUint32(4, parts.length > 0 ? head.length | HAS_BINS : head.length);
  frame.set(head, 8);
  let at = 8 + head.length;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function decodeBody(body: Uint8Array): unknown {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const word = view.getUint32(0);
  const jsonLength = word & 0x7fff_ffff;
  if (4 + jsonLength > body.length) throw new Error("the frame is shorter than its JSON");
  const value = JSON.parse(decoder.decode(body.subarray(4, 4 + jsonLength)));
  if ((word & HAS_BINS) === 0) return value;
  const bins = body.subarray(4 + jsonLength);
  const restore = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = restore(v[i]);
      return v;
    }
    const marker = (v as Record<string, unknown>)[BIN];
    if (Array.isArray(marker)) {
      const [at, length] = marker as [number, number];
      if (!Number.isInteger(at) || !Number.isInteger(length) || at < 0 || length < 0 || at + length > bins.length) {
        throw new Error("a byte array's marker points outside the frame");
      }
      return bins.slice(at, at + length);
    }
    for (const key in v) (v as Record<string, unknown>)[key] = restore((v as Record<string, unknown>)[key]);
    return v;
  };
  return restore(value);
}

/**
 * Reads frames from a byte stream, or from a reader (`read` fills a buffer: stdin read this way skips a stream's
 * promises per chunk), one decoded message at a time; ends when the input does.
 */
export async function* readFrames(
  input: ReadableStream<Uint8Array> | { read(into: Uint8Array): Promise<number | null> },
): AsyncGenerator<unknown> {
  let buf = new Uint8Array(64 * 1024);
  let start = 0;
  let end = 0;
  const chunks = input instanceof ReadableStream ? input : readChunks(input);
  for await (const chunk of chunks) {
    if (end + chunk.length > buf.length) {
      const pending = end - start;
      if (pending + chunk.length > buf.length) {
        const next = new Uint8Array((pending + chunk.length) * 2);
        next.set(buf.subarray(start, end));
        buf = next;
      } else {
        buf.copyWithin(0, start, end);
      }
      start = 0;
      end = pending;
    }
    buf.set(chunk, end);
    end += chunk.length;
    while (end - start >= 4) {
      const length = new DataView(buf.buffer, start, 4).getUint32(0);
      if (length > MAX_FRAME) throw new Error(`frame of ${length} bytes is over the ${MAX_FRAME}-byte limit`);
      if (end - start - 4 < length) break;
      yield decodeBody(buf.subarray(start + 4, start + 4 + length));
      start += 4 + length;
    }
    if (start === end) start = end = 0;
  }
}

/**
 * Frames written to a connection, one after another (a write may take several calls, and two must not interleave).
 * Frames sent while a write is under way, or in the same turn of the event loop, go out together in the next write:
 * under load one syscall carries many calls. `send` settles once its frame is written, and rejects when the
 * connection broke.
 */
export class FrameSender {
  readonly #conn: { write(bytes: Uint8Array): Promise<number> };
  #last: Promise<void> = Promise.resolve();
  /** Frames waiting for the next write, and that write (undefined until a frame waits). */
  #queued: Uint8Array[] = [];
  #next: Promise<void> | undefined;

  constructor(conn: { write(bytes: Uint8Array): Promise<number> }) {
    this.#conn = conn;
  }

  send(value: unknown): Promise<void> {
    this.#queued.push(encodeFrame(value));
    if (!this.#next) {
      this.#next = this.#last.then(() => this.#writeQueued());
      this.#last = this.#next.catch(() => {});
    }
    return this.#next;
  }

  async #writeQueued(): Promise<void> {
    const frames = this.#queued;
    this.#queued = [];
    this.#next = undefined;
    const bytes = frames.length === 1 ? frames[0] : concat(frames);
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }
}

async function* readChunks(reader: { read(into: Uint8Array): Promise<number | null> }): AsyncGenerator<Uint8Array> {
  const into = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await reader.read(into);
    if (n === null) return;
    yield into.subarray(0, n); // copied by the caller before the next read
  }
}

const NOTHING_QUEUED = Symbol("nothing queued");
/** A streamed body goes in pieces of at most this many bytes (plus one chunk). */
const PIECE_BYTES = 64 * 1024;

/**
 * Sends a streamed body in pieces: what is queued goes as one piece (up to
 * PIECE_BYTES), each sent once the one before is written. Bodies arrive in
 * small chunks (a guest writes a KiB at a time); a frame per chunk costs more
 * than the bytes. Rejects when the stream errors, or when `signal` aborts
 * (the stream is then cancelled: its reader stops waiting).
 */
export async function sendPieces(
  body: ReadableStream<Uint8Array>,
  send: (piece: Uint8Array) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const abort = () => reader.cancel(signal?.reason).catch(() => {});
  if (signal?.aborted) {
    abort();
    signal.throwIfAborted();
  }
  signal?.addEventListener("abort", abort, { once: true });
  try {
    await sendAll(reader, send, signal);
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

async function sendAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  send: (piece: Uint8Array) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const batch: Uint8Array[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    const piece = concat(batch);
    batch.length = 0;
    size = 0;
    await send(piece);
  };
  let next = reader.read();
  for (;;) {
    // A chunk already queued settles `next` before the marker does.
    const ready = await Promise.race([next, Promise.resolve(NOTHING_QUEUED)]);
    if (ready === NOTHING_QUEUED) {
      await flush();
      await next;
      continue;
    }
    signal?.throwIfAborted();
    if (ready.done) break;
    batch.push(ready.value);
    size += ready.value.length;
    if (size >= PIECE_BYTES) await flush();
    next = reader.read();
  }
  await flush();
}
