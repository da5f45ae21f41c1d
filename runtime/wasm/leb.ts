/** LEB128, as the WebAssembly binary format writes its integers. */

/** Reads an unsigned LEB128 at `pos`: [value, bytes read]. */
export function readU32(bytes: Uint8Array, pos: number): [number, number] {
  let result = 0, shift = 0, len = 0;
  for (;;) {
    const b = bytes[pos + len++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [result, len];
  }
}

/** Length of a signed LEB128 at `pos` (any width). */
export function slebLength(bytes: Uint8Array, pos: number): number {
  let len = 0;
  while (bytes[pos + len] & 0x80) len++;
  return len + 1;
}

/** Encodes an unsigned LEB128. */
export function leb(value: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return new Uint8Array(out);
}
