/**
 * Reading and writing a core module's sections, for the rewrites done at
 * deploy (instrument.ts, limits.ts).
 */

import { concat } from "../bytes.ts";
import { leb, readU32, slebLength } from "./leb.ts";

export interface Section {
  id: number;
  body: Uint8Array;
}

/** Rank of a section id in the binary format's order (custom sections, id 0, may appear anywhere). */
const sectionRank: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

export function order(id: number): number {
  return sectionRank[id] ?? 99;
}

export function readSections(module: Uint8Array): Section[] {
  const out: Section[] = [];
  let pos = 8;
  while (pos < module.length) {
    const id = module[pos++];
    const [size, len] = readU32(module, pos);
    pos += len;
    out.push({ id, body: module.subarray(pos, pos + size) });
    pos += size;
  }
  return out;
}

/** The module `header` (magic and version, 8 bytes) with `sections`. */
export function writeSections(header: Uint8Array, sections: Section[]): Uint8Array {
  return concat([
    header.subarray(0, 8),
    ...sections.flatMap((s) => [new Uint8Array([s.id]), leb(s.body.length), s.body]),
  ]);
}

/**
 * `sections` with section `id`'s body replaced by `edit(body)`; when there is none, with `edit(undefined)` put where
 * the binary format's order wants it.
 */
export function withSection(
  sections: readonly Section[],
  id: number,
  edit: (body: Uint8Array | undefined) => Uint8Array,
): Section[] {
  const at = sections.findIndex((s) => s.id === id);
  if (at >= 0) return sections.map((s, i) => i === at ? { id, body: edit(s.body) } : s);
  const before = sections.findIndex((s) => s.id !== 0 && order(s.id) > order(id));
  const out = [...sections];
  out.splice(before < 0 ? out.length : before, 0, { id, body: edit(undefined) });
  return out;
}

/** A vector section's body (its count, then its items) with `items` added at the end; a new one without `body`. */
export function appendToVector(body: Uint8Array | undefined, items: readonly Uint8Array[]): Uint8Array {
  if (!body) return concat([leb(items.length), ...items]);
  const [count, len] = readU32(body, 0);
  return concat([leb(count + items.length), body.subarray(len), ...items]);
}

export function countImportedMemories(body: Uint8Array | undefined): number {
  return countImports(body).memory;
}

/** How many functions, tables, memories, globals and tags an import section brings in (each index space's start). */
export function countImports(
  body: Uint8Array | undefined,
): { func: number; table: number; memory: number; global: number; tag: number } {
  const counts = { func: 0, table: 0, memory: 0, global: 0, tag: 0 };
  if (!body) return counts;
  let [count, pos] = readU32(body, 0);
  for (; count > 0; count--) {
    for (let i = 0; i < 2; i++) { // module name, field name
      const [n, l] = readU32(body, pos);
      pos += l + n;
    }
    const kind = body[pos++];
    if (kind === 0x00) { // function: type index
      counts.func++;
      pos += readU32(body, pos)[1];
    } else if (kind === 0x01) { // table: reftype, limits
      counts.table++;
      pos += body[pos] === 0x63 || body[pos] === 0x64 ? 1 + readS33(body, pos + 1)[1] : 1;
      pos = skipLimits(body, pos);
    } else if (kind === 0x02) {
      counts.memory++;
      pos = skipLimits(body, pos);
    } else if (kind === 0x03) { // global: valtype, mut
      counts.global++;
      pos += body[pos] === 0x63 || body[pos] === 0x64 ? 1 + readS33(body, pos + 1)[1] : 1;
      pos += 1;
    } else if (kind === 0x04) { // tag: attribute, type index
      counts.tag++;
      pos += 1;
      pos += readU32(body, pos)[1];
    }
  }
  return counts;
}

export function skipLimits(body: Uint8Array, pos: number): number {
  const flags = body[pos++];
  pos += readU32(body, pos)[1];
  if (flags & 0x01) pos += readU32(body, pos)[1];
  return pos;
}

/** A signed LEB128 of up to 33 bits (heap and block types): only its length is needed. */
export function readS33(b: Uint8Array, pos: number): [number, number] {
  return [0, slebLength(b, pos)];
}

/** A name as the binary format writes it: its length, then its UTF-8 bytes. */
export function name(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  return concat([leb(bytes.length), bytes]);
}
