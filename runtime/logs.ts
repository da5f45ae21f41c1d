/** A bounded, followable log of one workload. */

import type { LogLine, LogOpts } from "./types.ts";

const MAX_LINE = 16 * 1024;

/** `text` cut to the longest line a log keeps. */
export function clipLine(text: string): string {
  return text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}… (truncated)` : text;
}

export class LogBuffer {
  /** A ring: line number n (counted from the first ever appended) sits at n % capacity while it is kept. */
  readonly #ring: LogLine[] = [];
  readonly #capacity: number;
  readonly #waiters = new Set<() => void>();
  readonly #now: () => number;
  /** How many lines were ever appended; those kept are the last min(#appended, capacity). */
  #appended = 0;
  #closed = false;

  constructor(capacity = 2000, now: () => number = Date.now) {
    this.#capacity = Math.max(1, capacity);
    this.#now = now;
  }

  append(stream: LogLine["stream"], text: string): void {
    this.appendLine({ at: this.#now(), stream, text: clipLine(text) });
  }

  /** Appends a line made by the caller (whose text may be written only when read; `clipLine` bounds it). */
  appendLine(line: LogLine): void {
    this.#ring[this.#appended % this.#capacity] = line;
    this.#appended++;
    if (this.#waiters.size > 0) this.#wakeAll();
  }

  /** Ends every follower (the workload is gone). */
  close(): void {
    this.#closed = true;
    this.#wakeAll();
  }

  async *read(opts: LogOpts = {}): AsyncGenerator<LogLine> {
    const oldest = () => Math.max(0, this.#appended - this.#capacity);
    let next = opts.tail === undefined ? oldest() : Math.max(oldest(), this.#appended - opts.tail);
    for (;;) {
      while (next < this.#appended) {
        // Lines overwritten while the reader waited are skipped.
        next = Math.max(next, oldest());
        yield this.#ring[next % this.#capacity];
        next++;
      }
      if (!opts.follow || this.#closed || opts.signal?.aborted) return;
      await this.#changed(opts.signal);
    }
  }

  #changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  #wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/** Splits a byte stream into lines, feeding each complete line to `emit`. */
export class LineSplitter {
  readonly #decoder = new TextDecoder();
  readonly #emit: (line: string) => void;
  #pending = "";

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  write(bytes: Uint8Array): void {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    const lines = this.#pending.split("\n");
    this.#pending = lines.pop()!;
    for (const line of lines) this.#emit(line.endsWith("\r") ? line.slice(0, -1) : line);
    if (this.#pending.length > MAX_LINE) this.flush();
  }

  flush(): void {
    this.#pending += this.#decoder.decode();
    if (this.#pending) this.#emit(this.#pending);
    this.#pending = "";
  }
}
