/**
 * The wire format of Raft messages between processes: a compact binary
 * encoding (entries' data and snapshots are bytes, carried as they are, never
 * as JSON arrays of numbers). A frame holds any number of messages, so a
 * transport can send what piled up for a peer in one write.
 *
 * Layout: numbers are unsigned LEB128 (up to 2^53), strings and byte strings
 * are a length then the bytes, optional fields are announced by a flags byte.
 */

import type { Message } from "./messages.ts";
import type { Config, Entry, Snapshot } from "./types.ts";

const types = [
  "vote",
  "timeout-now",
  "vote-response",
  "pre-vote",
  "pre-vote-response",
  "append",
  "snapshot",
  "append-response",
  "read-index",
  "read-index-response",
] as const satisfies readonly Message["type"][];
const kinds = ["normal", "noop", "config"] as const satisfies readonly Entry["kind"][];

/** Thrown on a frame that is not a valid encoding: the peer is broken or not a peer. */
export class CodecError extends Error {
  readonly code = "raft_codec";
}

/** Encodes `messages` as one frame. */
export function encodeFrame(messages: readonly Message[]): Uint8Array {
  const w = new Writer();
  w.uint(messages.length);
  for (const m of messages) writeMessage(w, m);
  return w.done();
}

/** Decodes a frame made by `encodeFrame`; throws CodecError on anything else. */
export function decodeFrame(frame: Uint8Array): Message[] {
  const r = new Reader(frame);
  const count = r.uint();
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) messages.push(readMessage(r));
  if (!r.atEnd()) throw new CodecError("trailing bytes after the last message");
  return messages;
}

function writeMessage(w: Writer, m: Message): void {
  w.byte(types.indexOf(m.type));
  w.string(m.from);
  w.string(m.to);
  w.uint(m.term);
  switch (m.type) {
    case "vote":
    case "pre-vote":
      w.uint(m.lastIndex);
      w.uint(m.lastTerm);
      w.byte(m.type === "vote" && m.transfer ? 1 : 0);
      return;
    case "timeout-now":
      return;
    case "vote-response":
    case "pre-vote-response":
      w.byte(m.granted ? 1 : 0);
      return;
    case "append":
      w.uint(m.prevIndex);
      w.uint(m.prevTerm);
      w.uint(m.commit);
      w.optional(m.round);
      w.uint(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      return;
    case "snapshot":
      w.optional(m.round);
      writeSnapshot(w, m.snapshot);
      return;
    case "append-response":
      w.byte(m.success ? 1 : 0);
      w.uint(m.index);
      w.optional(m.round);
      return;
    case "read-index":
      w.string(m.ctx);
      return;
    case "read-index-response":
      w.string(m.ctx);
      w.uint(m.index);
      return;
  }
}

function readMessage(r: Reader): Message {
  const type = types[r.byte()];
  if (type === undefined) throw new CodecError("unknown message type");
  const from = r.string();
  const to = r.string();
  const term = r.uint();
  switch (type) {
    case "vote":
    case "pre-vote": {
      const lastIndex = r.uint();
      const lastTerm = r.uint();
      const transfer = r.byte() === 1;
      if (type === "pre-vote") return { type, from, to, term, lastIndex, lastTerm };
      return { type, from, to, term, lastIndex, lastTerm, ...(transfer && { transfer }) };
    }
    case "timeout-now":
      return { type, from, to, term };
    case "vote-response":
    case "pre-vote-response":
      return { type, from, to, term, granted: r.byte() === 1 };
    case "append": {
      const prevIndex = r.uint();
      const prevTerm = r.uint();
      const commit = r.uint();
      const round = r.optional();
      const entries: Entry[] = [];
      for (let n = r.uint(); n > 0; n--) entries.push(readEntry(r));
      return { type, from, to, term, prevIndex, prevTerm, entries, commit, ...(round !== undefined && { round }) };
    }
    case "snapshot": {
      const round = r.optional();
      return { type, from, to, term, snapshot: readSnapshot(r), ...(round !== undefined && { round }) };
    }
    case "append-response": {
      const success = r.byte() === 1;
      const index = r.uint();
      const round = r.optional();
      return { type, from, to, term, success, index, ...(round !== undefined && { round }) };
    }
    case "read-index":
      return { type, from, to, term, ctx: r.string() };
    case "read-index-response": {
      const ctx = r.string();
      return { type, from, to, term, ctx, index: r.uint() };
    }
  }
}

function writeEntry(w: Writer, e: Entry): void {
  w.uint(e.index);
  w.uint(e.term);
  w.byte(kinds.indexOf(e.kind) | (e.client !== undefined ? 4 : 0) | (e.seq !== undefined ? 8 : 0));
  w.bytes(e.data);
  if (e.client !== undefined) w.string(e.client);
  if (e.seq !== undefined) w.uint(e.seq);
}

function readEntry(r: Reader): Entry {
  const index = r.uint();
  const term = r.uint();
  const flags = r.byte();
  const kind = kinds[flags & 3];
  if (kind === undefined) throw new CodecError("unknown entry kind");
  const data = r.bytes();
  const client = flags & 4 ? r.string() : undefined;
  const seq = flags & 8 ? r.uint() : undefined;
  return { index, term, kind, data, ...(client !== undefined && { client }), ...(seq !== undefined && { seq }) };
}

function writeSnapshot(w: Writer, s: Snapshot): void {
  w.uint(s.index);
  w.uint(s.term);
  w.strings(s.config.voters);
  w.byte(s.config.outgoing ? 1 : 0);
  if (s.config.outgoing) w.strings(s.config.outgoing);
  w.strings(s.config.learners);
  w.bytes(s.data);
}

function readSnapshot(r: Reader): Snapshot {
  const index = r.uint();
  const term = r.uint();
  const voters = r.strings();
  const outgoing = r.byte() === 1 ? r.strings() : undefined;
  const config: Config = { voters, ...(outgoing && { outgoing }), learners: r.strings() };
  return { index, term, config, data: r.bytes() };
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A growing byte buffer. */
class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new CodecError(`cannot encode ${n}: not a safe unsigned integer`);
    this.#reserve(8);
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#len++] = n;
  }

  /** An optional number: a presence byte, then the number. */
  optional(n: number | undefined): void {
    this.byte(n === undefined ? 0 : 1);
    if (n !== undefined) this.uint(n);
  }

  bytes(b: Uint8Array): void {
    this.uint(b.length);
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  string(s: string): void {
    this.bytes(utf8.encode(s));
  }

  strings(list: readonly string[]): void {
    this.uint(list.length);
    for (const s of list) this.string(s);
  }

  done(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

/** Reads what `Writer` wrote, checking every length against what is left. */
class Reader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  atEnd(): boolean {
    return this.#pos === this.#buf.length;
  }

  byte(): number {
    if (this.#pos >= this.#buf.length) throw new CodecError("truncated frame");
    return this.#buf[this.#pos++];
  }

  uint(): number {
    let n = 0;
    for (let scale = 1;; scale *= 0x80) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (!Number.isSafeInteger(n)) throw new CodecError("number too large");
      if (b < 0x80) return n;
    }
  }

  optional(): number | undefined {
    return this.byte() === 1 ? this.uint() : undefined;
  }

  bytes(): Uint8Array {
    const n = this.uint();
    if (n > this.#buf.length - this.#pos) throw new CodecError("truncated frame");
    // A copy: the frame's buffer is not kept alive by what is decoded from it.
    const b = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  string(): string {
    try {
      return fromUtf8.decode(this.bytes());
    } catch (err) {
      if (err instanceof CodecError) throw err;
      throw new CodecError("a string is not valid UTF-8");
    }
  }

  strings(): string[] {
    const list: string[] = [];
    for (let n = this.uint(); n > 0; n--) list.push(this.string());
    return list;
  }
}
