/**
 * Snapshot reset, for isolated instances of wasi:http handlers: an instance
 * is made once, its state saved right after instantiation, and put back after
 * every request, so each request starts from the pristine post-init state at
 * the cost of a memory copy instead of a fresh instantiation.
 *
 * At deploy (exposeState) every core module exports what a guest can change
 * between requests and the host cannot otherwise reach: its mutable globals
 * and its memories. A module whose code can change a table, or drop a data or
 * element segment, is not reset (that state is not restored here): its
 * service falls back to a fresh instance per request.
 *
 * At run time (Snapshot) the memories and globals are saved once and copied
 * back after each request, and so are jco's handle tables (the host resources
 * the guest can name): a resource a request left open can no longer be named,
 * and its host object is let go. A request that grew a memory, or failed,
 * gets its instance thrown away instead.
 */

import { concat } from "../bytes.ts";
import { leb, readU32 } from "./leb.ts";
import { appendToVector, countImports, name, readSections, withSection, writeSections } from "./sections.ts";
import { skipInstruction } from "./instrument.ts";

/** Export names given to a core module's mutable globals and memories (index appended). */
export const GLOBAL_EXPORT = "orca_snapshot_global_";
export const MEMORY_EXPORT = "orca_snapshot_memory_";

/**
 * Returns `module` with every defined mutable global and every defined memory that is not shared exported under
 * the names above, or why its state cannot be reset.
 */
export function exposeState(module: Uint8Array): { module: Uint8Array } | { why: string } {
  const sections = readSections(module);
  const imported = countImports(sections.find((s) => s.id === 2)?.body);
  const entries: Uint8Array[] = [];
  const globals = sections.find((s) => s.id === 6);
  if (globals) {
    const found = mutableGlobals(globals.body);
    if ("why" in found) return found;
    for (const i of found.indices) {
      const index = imported.global + i;
      entries.push(concat([name(`${GLOBAL_EXPORT}${index}`), new Uint8Array([0x03]), leb(index)]));
    }
  }
  const memories = sections.find((s) => s.id === 5);
  if (memories) {
    let [count, pos] = readU32(memories.body, 0);
    for (let i = 0; count > 0; count--, i++) {
      const flags = memories.body[pos++];
      pos += readU32(memories.body, pos)[1];
      if (flags & 0x01) pos += readU32(memories.body, pos)[1];
      if (flags & 0x04) return { why: "it has a 64-bit memory" };
      if (flags & 0x02) continue; // shared: the interrupt flag (instrument.ts), not guest state
      const index = imported.memory + i;
      entries.push(concat([name(`${MEMORY_EXPORT}${index}`), new Uint8Array([0x02]), leb(index)]));
    }
  }
  const code = sections.find((s) => s.id === 10);
  if (code) {
    const why = stateChangingCode(code.body);
    if (why) return { why };
  }
  if (entries.length === 0) return { module };
  const out = withSection(sections, 7, (body) => appendToVector(body, entries));
  return { module: writeSections(module, out) };
}

/** Value types JavaScript can read and write in a global: i32, i64, f32, f64. */
const NUMERIC = new Set([0x7f, 0x7e, 0x7d, 0x7c]);

/** Positions (among the defined globals) of the mutable ones. */
function mutableGlobals(body: Uint8Array): { indices: number[] } | { why: string } {
  let [count, pos] = readU32(body, 0);
  const indices: number[] = [];
  for (let i = 0; count > 0; count--, i++) {
    const type = body[pos++];
    if (type === 0x63 || type === 0x64) pos += readU32(body, pos)[1]; // (ref null? ht)
    const mutable = body[pos++] === 0x01;
    if (mutable && !NUMERIC.has(type)) return { why: "it has a mutable global of a reference or vector type" };
    if (mutable) indices.push(i);
    // The initializer: a constant expression up to its `end`.
    while (body[pos] !== 0x0b) {
      pos = skipInstruction(body, pos);
      if (pos < 0) return { why: "a global's initializer uses an instruction this reader does not know" };
    }
    pos++;
  }
  return { indices };
}

/**
 * Why a code section's instructions change state that a reset does not put back (tables, dropped segments), or
 * undefined when they do not.
 */
function stateChangingCode(body: Uint8Array): string | undefined {
  let [count, pos] = readU32(body, 0);
  for (; count > 0; count--) {
    const [size, len] = readU32(body, pos);
    pos += len;
    const end = pos + size;
    let [groups, at] = readU32(body, pos);
    at += pos;
    for (; groups > 0; groups--) {
      at += readU32(body, at)[1];
      const t = body[at++];
      if (t === 0x63 || t === 0x64) at += readU32(body, at)[1];
    }
    while (at < end) {
      const op = body[at];
      if (op === 0x26) return "its code sets table entries (table.set)";
      if (op === 0xfc) {
        const sub = readU32(body, at + 1)[0];
        if (sub === 9 || sub === 13) return "its code drops data or element segments";
        if (sub === 12 || sub === 14 || sub === 15 || sub === 17) return "its code changes tables";
      }
      at = skipInstruction(body, at);
      if (at < 0) return "its code uses an instruction this reader does not know";
    }
    pos = end;
  }
  return undefined;
}

/** The key under which jco's glue, patched at load (component.ts), hands its per-instance state to the host. */
export const GLUE_STATE = "orca:glue-state";

/**
 * What the patched glue fills in: its resource handle tables (indexed by resource type), through which the guest
 * names host resources, and its capture tables (rep -> host object), which hold the objects those handles name.
 */
export interface GlueState {
  handleTables?: HandleTable[];
  captureTables: Map<unknown, unknown>[];
}

/**
 * One of jco's resource handle tables: slot 0 heads the free list; slot i (from 1) is the words 2i (the free list's
 * next, or a borrow's scope) and 2i+1 (the resource's rep with an ownership flag, or 0 while the slot is free).
 */
type HandleTable = unknown[] & { _createdReps?: Set<unknown> };

/**
 * An instance's state right after instantiation, and putting it back. `restore` returns false, and changes
 * nothing the guest could still use, when the state cannot be put back: the instance must then be dropped.
 */
export class Snapshot {
  readonly #memories: { memory: WebAssembly.Memory; bytes: Uint8Array }[];
  readonly #globals: { global: WebAssembly.Global; value: unknown }[];
  readonly #tables: { table: HandleTable; words: unknown[]; reps: unknown[] }[];
  readonly #captures: { map: Map<unknown, unknown>; keys: Set<unknown> }[];

  private constructor(memories: WebAssembly.Memory[], globals: WebAssembly.Global[], glue: Required<GlueState>) {
    this.#memories = memories.map((memory) => ({ memory, bytes: new Uint8Array(memory.buffer).slice() }));
    this.#globals = globals.map((global) => ({ global, value: global.value }));
    this.#tables = glue.handleTables.filter((t) => Array.isArray(t)).map((table) => ({
      table,
      words: [...table],
      reps: [...table._createdReps ?? []],
    }));
    this.#captures = glue.captureTables.map((map) => ({ map, keys: new Set(map.keys()) }));
  }

  /**
   * Saves the state of a component's core instances (made from modules rewritten by exposeState), the memories
   * the host gave them, and the glue's handle tables. Undefined when the glue did not hand its tables over.
   */
  static take(
    instances: readonly WebAssembly.Instance[],
    given: readonly WebAssembly.Memory[],
    glue: GlueState,
  ): Snapshot | undefined {
    if (!glue.handleTables) return undefined;
    const memories = new Set(given);
    const globals: WebAssembly.Global[] = [];
    for (const instance of instances) {
      for (const [key, value] of Object.entries(instance.exports)) {
        if (key.startsWith(MEMORY_EXPORT) && value instanceof WebAssembly.Memory) memories.add(value);
        else if (key.startsWith(GLOBAL_EXPORT) && value instanceof WebAssembly.Global) globals.push(value);
      }
    }
    return new Snapshot([...memories], globals, { handleTables: glue.handleTables, captureTables: glue.captureTables });
  }

  /** Bytes held by the saved copy. */
  get bytes(): number {
    return this.#memories.reduce((n, m) => n + m.bytes.length, 0);
  }

  /**
   * Puts the saved state back: memories, globals, and the glue's tables, so that the guest can no longer name a
   * resource the request left open (its host object is let go too). False, with nothing changed, when a memory
   * grew: it cannot shrink, and its size would tell the next request about this one.
   */
  restore(): boolean {
    for (const { memory, bytes } of this.#memories) if (memory.buffer.byteLength !== bytes.length) return false;
    for (const { memory, bytes } of this.#memories) new Uint8Array(memory.buffer).set(bytes);
    for (const { global, value } of this.#globals) global.value = value;
    for (const { table, words, reps } of this.#tables) {
      table.length = words.length;
      for (let i = 0; i < words.length; i++) table[i] = words[i];
      if (table._createdReps) {
        table._createdReps.clear();
        for (const rep of reps) table._createdReps.add(rep);
      }
    }
    for (const { map, keys } of this.#captures) {
      for (const key of map.keys()) if (!keys.has(key)) map.delete(key);
    }
    return true;
  }
}

/**
 * Why an isolated wasi:http handler cannot be reset between requests, or undefined when it can: its module (a
 * core that changes tables, say), or its service's writable mounts (files written would outlive the request).
 */
export function whyNotReset(
  prepared: { resettable?: boolean; notResettable?: string },
  mounts: readonly { rw: boolean }[],
): string | undefined {
  if (mounts.some((m) => m.rw)) return "it mounts a writable volume, which a reset does not put back";
  if (!prepared.resettable) return prepared.notResettable ?? "its module was prepared without a snapshot";
  return undefined;
}
