/**
 * Memory caps: rewrites the maximum of every memory a core module defines,
 * so growth past the cap fails inside the guest (malloc returns NULL, or the
 * guest traps), never the host. Imported memories are left alone: their
 * defining module is capped.
 */

import { OrcaError } from "../../errors.ts";
import { concat } from "../bytes.ts";
import { leb, readU32 } from "./leb.ts";
import { appendToVector, countImportedMemories, name, readSections, withSection, writeSections } from "./sections.ts";

export const PAGE = 65536;

/** Returns `module` with every defined memory's maximum at most `maxPages`. */
export function capMemory(module: Uint8Array, maxPages: number): Uint8Array {
  if (module[0] !== 0 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) {
    throw new OrcaError("wasm", "not a core WebAssembly module");
  }
  // Only the memory section changes: copy the rest as it is (sections can be megabytes).
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  let pos = 8;
  while (pos < module.length) {
    const start = pos;
    const id = module[pos++];
    const [size, sizeLen] = readU32(module, pos);
    pos += sizeLen + size;
    if (id !== 5) {
      parts.push(module.subarray(start, pos));
      continue;
    }
    const rewritten = rewriteMemorySection(module.subarray(pos - size, pos), maxPages);
    parts.push(new Uint8Array([id, ...leb(rewritten.length)]), rewritten);
  }
  return concat(parts);
}

function rewriteMemorySection(body: Uint8Array, maxPages: number): Uint8Array {
  let pos = 0;
  const [count, countLen] = readU32(body, pos);
  pos += countLen;
  const out: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const flags = body[pos++];
    if (flags & 0x04) throw new OrcaError("wasm", "64-bit memories are not supported");
    const [min, minLen] = readU32(body, pos);
    pos += minLen;
    let max: number | undefined;
    if (flags & 0x01) {
      const [m, mLen] = readU32(body, pos);
      pos += mLen;
      max = m;
    }
    if (min > maxPages) {
      throw new OrcaError(
        "wasm",
        `the module needs ${min * PAGE / 2 ** 20} MiB of memory at start, more than its cap`,
        {
          hint: "raise [service.resources] memory",
        },
      );
    }
    const capped = Math.min(max ?? maxPages, maxPages);
    out.push(flags | 0x01, ...leb(min), ...leb(capped));
  }
  return concat([new Uint8Array(out), body.subarray(pos)]);
}

/** Where a module rewritten by importMainMemory takes its memory from. */
export const MEMORY_IMPORT = { module: "orca", name: "memory" } as const;

/** The first defined memory's limits, in pages. */
export interface MemoryLimits {
  min: number;
  max: number | undefined;
}

/**
 * Returns `module` with its first defined memory (a preview1 command's only
 * one) imported as MEMORY_IMPORT instead, and that memory's limits: the host
 * can then hand it a recycled memory, zeroed (a fresh memory's pages cost a
 * page fault each on first touch). Its index stays 0 (the module imports no
 * memory of its own), so its code and exports are unchanged.
 */
export function importMainMemory(module: Uint8Array): { module: Uint8Array; limits: MemoryLimits } | undefined {
  const sections = readSections(module);
  const memory = sections.find((s) => s.id === 5);
  const imports = sections.find((s) => s.id === 2);
  if (!memory || countImportedMemories(imports?.body) > 0) return undefined;
  // The memory section: drop the first entry.
  let at = 0;
  const [count, countLen] = readU32(memory.body, at);
  if (count === 0) return undefined;
  at += countLen;
  const entryStart = at;
  const flags = memory.body[at++];
  if (flags & 0x06) return undefined; // shared or 64-bit
  const [min, minLen] = readU32(memory.body, at);
  at += minLen;
  let max: number | undefined;
  if (flags & 0x01) {
    const [m, mLen] = readU32(memory.body, at);
    at += mLen;
    max = m;
  }
  const limits = memory.body.subarray(entryStart, at);
  const restOfMemories = concat([leb(count - 1), memory.body.subarray(at)]);
  // The import section: one more entry, a memory.
  const entry = concat([name(MEMORY_IMPORT.module), name(MEMORY_IMPORT.name), new Uint8Array([0x02]), limits]);
  const out = withSection(sections, 2, (body) => appendToVector(body, [entry]))
    .flatMap((s) => s.id !== 5 ? [s] : count > 1 ? [{ id: 5, body: restOfMemories }] : []);
  return { module: writeSections(module, out), limits: { min, max } };
}
