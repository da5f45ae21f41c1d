/**
 * CPU deadlines for guests that never yield: every core module gets an extra
 * one-page shared memory, exported as `orca_interrupt`, and an atomic check of
 * its first word at each function entry and each loop head. A watchdog on
 * another thread sets the word when a call's deadline passes; the guest then
 * traps (`unreachable`) at its next check, and the instance is thrown away.
 */

import { concat } from "../bytes.ts";
import { leb, readU32, slebLength } from "./leb.ts";
import {
  appendToVector,
  countImportedMemories,
  name,
  readS33,
  readSections,
  withSection,
  writeSections,
} from "./sections.ts";

export const INTERRUPT_EXPORT = "orca_interrupt";

/**
 * Whether a module holds guest code worth checking: it has a memory (defined
 * or imported). jco's own trampoline modules have none and only forward
 * calls into modules that are checked; leaving them alone saves a shared
 * memory per instance.
 */
export function needsInterrupts(module: Uint8Array): boolean {
  const sections = readSections(module);
  return sections.some((s) => s.id === 5) || countImportedMemories(sections.find((s) => s.id === 2)?.body) > 0;
}

/** Returns the instrumented module, or undefined if it uses an opcode this decoder does not know. */
export function instrumentInterrupts(module: Uint8Array): Uint8Array | undefined {
  const sections = readSections(module);
  const importedMemories = countImportedMemories(sections.find((s) => s.id === 2)?.body);
  const memorySection = sections.find((s) => s.id === 5);
  const definedMemories = memorySection ? readU32(memorySection.body, 0)[0] : 0;
  const flagIndex = importedMemories + definedMemories;
  const check = checkBytes(flagIndex);

  const code = sections.find((s) => s.id === 10);
  let newCode: Uint8Array | undefined;
  if (code) {
    newCode = rewriteCode(code.body, check);
    if (!newCode) return undefined;
  }
  // The flag memory: shared, exactly one page.
  const flagMemory = new Uint8Array([0x03, 0x01, 0x01]);
  const exportEntry = concat([name(INTERRUPT_EXPORT), new Uint8Array([0x02]), leb(flagIndex)]);
  let out = withSection(sections, 5, (body) => appendToVector(body, [flagMemory]));
  out = withSection(out, 7, (body) => appendToVector(body, [exportEntry]));
  if (newCode) out = withSection(out, 10, () => newCode!);
  return writeSections(module, out);
}

/** `i32.const 0; i32.atomic.load (flag memory); if; unreachable; end` */
function checkBytes(memIndex: number): Uint8Array {
  const memarg = memIndex === 0 ? [0x02, 0x00] : [0x42, ...leb(memIndex), 0x00];
  return new Uint8Array([0x41, 0x00, 0xfe, 0x10, ...memarg, 0x04, 0x40, 0x00, 0x0b]);
}

function rewriteCode(body: Uint8Array, check: Uint8Array): Uint8Array | undefined {
  let [count, pos] = readU32(body, 0);
  const parts: Uint8Array[] = [leb(count)];
  for (; count > 0; count--) {
    const [size, len] = readU32(body, pos);
    pos += len;
    const fn = body.subarray(pos, pos + size);
    pos += size;
    const rewritten = rewriteFunction(fn, check);
    if (!rewritten) return undefined;
    parts.push(leb(rewritten.length), rewritten);
  }
  return concat(parts);
}

function rewriteFunction(fn: Uint8Array, check: Uint8Array): Uint8Array | undefined {
  // Locals: vec of (count, valtype).
  let [groups, pos] = readU32(fn, 0);
  for (; groups > 0; groups--) {
    pos += readU32(fn, pos)[1];
    pos = skipValType(fn, pos);
  }
  const parts: Uint8Array[] = [fn.subarray(0, pos), check];
  let from = pos;
  while (pos < fn.length) {
    const op = fn[pos];
    const next = skipInstruction(fn, pos);
    if (next < 0) return undefined;
    if (op === 0x03) { // loop: check at the head of every iteration
      parts.push(fn.subarray(from, next), check);
      from = next;
    }
    pos = next;
  }
  parts.push(fn.subarray(from));
  return concat(parts);
}

function skipValType(b: Uint8Array, pos: number): number {
  const t = b[pos++];
  return t === 0x63 || t === 0x64 ? pos + readS33(b, pos)[1] : pos;
}

function skipBlockType(b: Uint8Array, pos: number): number {
  const t = b[pos];
  if (t === 0x40 || (t >= 0x6f && t <= 0x7f) || t === 0x7b) return pos + 1;
  if (t === 0x63 || t === 0x64) return pos + 1 + readS33(b, pos + 1)[1];
  return pos + readS33(b, pos)[1]; // a type index
}

function skipMemarg(b: Uint8Array, pos: number): number {
  const [flags, l] = readU32(b, pos);
  pos += l;
  if (flags & 0x40) pos += readU32(b, pos)[1];
  return pos + readU32(b, pos)[1];
}

const u32 = (b: Uint8Array, pos: number) => pos + readU32(b, pos)[1];

/** The position after the instruction at `pos`, or -1 for an opcode this decoder does not know. */
export function skipInstruction(b: Uint8Array, pos: number): number {
  const op = b[pos++];
  if (
    op <= 0x01 || op === 0x05 || op === 0x0a || op === 0x0b || op === 0x0f || op === 0x19 || op === 0x1a || op === 0x1b
  ) return pos;
  if (op >= 0x02 && op <= 0x04 || op === 0x06) return skipBlockType(b, pos);
  if (op === 0x07 || op === 0x08 || op === 0x09 || op === 0x18 || (op >= 0x0c && op <= 0x0d)) return u32(b, pos);
  if (op === 0x0e) {
    let [n, p] = [readU32(b, pos)[0], u32(b, pos)];
    for (; n >= 0; n--) p = u32(b, p); // n labels and the default
    return p;
  }
  if (op === 0x10 || op === 0x12 || op === 0x14 || op === 0x15) return u32(b, pos);
  if (op === 0x11 || op === 0x13) return u32(b, u32(b, pos));
  if (op === 0x1c) {
    let [n, p] = [readU32(b, pos)[0], u32(b, pos)];
    for (; n > 0; n--) p = skipValType(b, p);
    return p;
  }
  if (op === 0x1f) { // try_table: blocktype, vec(catch)
    let p = skipBlockType(b, pos);
    let [n, l] = readU32(b, p);
    p += l;
    for (; n > 0; n--) {
      const kind = b[p++];
      if (kind === 0x00 || kind === 0x01) p = u32(b, p);
      p = u32(b, p);
    }
    return p;
  }
  if (op >= 0x20 && op <= 0x26) return u32(b, pos);
  if (op >= 0x28 && op <= 0x3e) return skipMemarg(b, pos);
  if (op === 0x3f || op === 0x40) return u32(b, pos);
  if (op === 0x41 || op === 0x42) return pos + slebLength(b, pos);
  if (op === 0x43) return pos + 4;
  if (op === 0x44) return pos + 8;
  if (op >= 0x45 && op <= 0xc4) return pos;
  if (op === 0xd0) return pos + readS33(b, pos)[1];
  if (op === 0xd1 || op === 0xd3 || op === 0xd4) return pos;
  if (op === 0xd2 || op === 0xd5 || op === 0xd6) return u32(b, pos);
  if (op === 0xfc) {
    const [sub, l] = readU32(b, pos);
    pos += l;
    if (sub <= 7) return pos;
    if (sub === 8 || sub === 10 || sub === 12 || sub === 14) return u32(b, u32(b, pos));
    if (sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17)) return u32(b, pos);
    return -1;
  }
  if (op === 0xfd) {
    const [sub, l] = readU32(b, pos);
    pos += l;
    if (sub <= 11 || sub === 92 || sub === 93) return skipMemarg(b, pos);
    if (sub === 12 || sub === 13) return pos + 16;
    if (sub >= 21 && sub <= 34) return pos + 1;
    if (sub >= 84 && sub <= 91) return skipMemarg(b, pos) + 1;
    return sub <= 0x113 ? pos : -1;
  }
  if (op === 0xfe) {
    const [sub, l] = readU32(b, pos);
    pos += l;
    if (sub === 0x03) return pos + 1;
    return sub <= 0x4e ? skipMemarg(b, pos) : -1;
  }
  return -1;
}
