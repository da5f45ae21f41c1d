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

/** One message as a frame. */
export function encodeFrame(value: unknown): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const json = JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) {
      parts.push(v);
      const marker = { [BIN]: [offset, v.length] };
      offset += v.length;
      return marker;
    }
    return v;
  });
  const head = new TextEncoder().encode(json);
  const frame = new Uint8Array(8 + head.length + offset);
  const view = new DataView(frame.buffer);
  view.setUint32(0, frame.length - 4);
  view.setUint32(4, head.length);
  frame.set(head, 8);
  let at = 8 + head.length;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

function decodeBody(body: Uint8Array): unknown {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const jsonLength = view.getUint32(0);
  const json = new TextDecoder().decode(body.subarray(4, 4 + jsonLength));
  const bins = body.subarray(4 + jsonLength);
  return JSON.parse(json, (_key, v) => {
    if (v && typeof v === "object" && BIN in v && Array.isArray(v[BIN])) {
      const [at, length] = v[BIN] as [number, number];
      return bins.slice(at, at + length);
    }
    return v;
  });
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
 * `send` settles once its frame is written, and rejects when the connection broke.
 */
export class FrameSender {
  readonly #conn: { write(bytes: Uint8Array): Promise<number> };
  #last: Promise<void> = Promise.resolve();

  constructor(conn: { write(bytes: Uint8Array): Promise<number> }) {
    this.#conn = conn;
  }

  send(value: unknown): Promise<void> {
    const frame = encodeFrame(value);
    const written = this.#last.then(async () => {
      for (let at = 0; at < frame.length;) at += await this.#conn.write(frame.subarray(at));
    });
    this.#last = written.catch(() => {});
    return written;
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
