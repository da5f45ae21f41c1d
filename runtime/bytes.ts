/** Byte helpers shared by the runtimes. */

/** Joins chunks into one array. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** `bytes` in base64, in pieces: a spread of a large array into `String.fromCharCode` overflows the stack. */
export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The bytes of base64 `text` (throws on text that is not base64). */
export function fromBase64(text: string): Uint8Array {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Keeps the last `limit` bytes written. */
export class OutputTail {
  #chunks: Uint8Array[] = [];
  #size = 0;
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    while (this.#size - this.#chunks[0].length >= this.#limit) this.#size -= this.#chunks.shift()!.length;
  }

  text(): string {
    const all = concat(this.#chunks);
    return new TextDecoder().decode(all.subarray(Math.max(0, all.length - this.#limit)));
  }
}
