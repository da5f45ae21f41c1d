/**
 * Memory caps: rewrites the maximum of every memory a core module defines,
 * so growth past the cap fails inside the guest (malloc returns NULL, or the
 * guest traps), never the host. Imported memories are left alone: their
 * defining module is capped.
 */

import { OrcaError } from "../../errors.ts";
import { concat } from "../bytes.ts";
import { leb, readU32 } from "./leb.ts";

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
