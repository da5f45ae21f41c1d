/**
 * One kept connection of the upstream client (`h1.ts`): its socket and its read buffer, with the reads an answer
 * needs (more bytes, a line, a whole head), one at a time.
 */

import { headEnd, latin1, ProtocolError, UpstreamError } from "./h1_head.ts";

/** An answer's head may be this long; longer is refused. */
const MAX_HEAD = 64 * 1024;

export class Conn {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(16 * 1024);
  start = 0;
  end = 0;
  idle = false;
  idleSince = 0;
  closed = false;
  #reading?: Promise<number | null>;

  constructor(readonly tcp: Deno.TcpConn, readonly key: string) {}

  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more into the buffer (one read at a time): the bytes read, or null at the end of the stream. */
  fill(): Promise<number | null> {
    if (this.#reading) return this.#reading;
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const grown = new Uint8Array(this.buf.length * 2);
        grown.set(this.buf);
        this.buf = grown;
      }
    }
    this.#reading = this.tcp.read(this.buf.subarray(this.end)).then((n) => {
      this.#reading = undefined;
      if (n !== null) this.end += n;
      return n;
    }, (err) => {
      this.#reading = undefined;
      throw err;
    });
    return this.#reading;
  }

  /** Takes `n` buffered bytes (a copy). */
  take(n: number): Uint8Array<ArrayBuffer> {
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** The line up to the next LF (cut, with a CR before it), reading as needed; at most `max` bytes. */
  async line(max: number): Promise<string> {
    for (;;) {
      const lf = this.buf.indexOf(10, this.start);
      if (lf !== -1 && lf < this.end) {
        const text = latin1(this.buf.subarray(this.start, lf > this.start && this.buf[lf - 1] === 13 ? lf - 1 : lf));
        this.start = lf + 1;
        return text;
      }
      if (this.buffered > max) throw new ProtocolError(`a line over ${max} bytes`);
      if (await this.fill() === null) throw new UpstreamError("closed", "the connection closed mid-answer");
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) off += await this.tcp.write(bytes.subarray(off));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.tcp.close();
    } catch {
      // already gone
    }
  }
}

export async function connect(hostname: string, port: number, key: string): Promise<Conn> {
  try {
    const tcp = await Deno.connect({ hostname, port });
    tcp.setNoDelay(true);
    return new Conn(tcp, key);
  } catch (err) {
    throw new UpstreamError("connect", `cannot connect to ${key}: ${(err as Error).message}`);
  }
}

/** The head of the next answer, as text (its blank line included). */
export async function readHead(conn: Conn, first: boolean): Promise<string> {
  let scanned = conn.start;
  for (;;) {
    const end = headEnd(conn.buf, Math.max(conn.start, scanned - 3), conn.end);
    if (end !== -1) {
      const text = latin1(conn.buf.subarray(conn.start, end));
      conn.start = end;
      return text;
    }
    scanned = conn.end;
    if (conn.buffered > MAX_HEAD) throw new ProtocolError(`an answer's head over ${MAX_HEAD / 1024} KiB`);
    const empty = first && conn.buffered === 0;
    let read: number | null;
    try {
      read = await conn.fill();
    } catch (err) {
      // Reset (or cut as its request could not be written): with nothing heard yet, the same as a close.
      if (!empty) throw err;
      throw new UpstreamError("closed", `the connection ended before an answer: ${(err as Error).message}`, true);
    }
    if (read === null) {
      throw new UpstreamError(
        "closed",
        empty ? "the connection closed before an answer" : "the connection closed mid-answer",
        empty,
      );
    }
  }
}
