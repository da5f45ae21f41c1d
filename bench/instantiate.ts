/** Instantiate-from-compiled latency per guest kind (the pool's cost per request). */

import { sha256Hex } from "../config/mod.ts";
import { compileComponent } from "../runtime/wasm/compile.ts";

export interface InstantiateResult {
  guest: string;
  kind: string;
  p50Ms: number;
  p99Ms: number;
  compileMs: number;
}

export async function measureInstantiate(
  guest: string,
  path: string,
  rounds: number,
  cacheDir: string,
): Promise<InstantiateResult> {
  const bytes = await Deno.readFile(path);
  const t0 = performance.now();
  const compiled = await compileComponent(bytes, await sha256Hex(bytes), cacheDir);
  const compileMs = performance.now() - t0;
  const io = { env: {}, stdin: new Uint8Array(), stdout() {}, stderr() {} };
  const times: number[] = [];
  const warmup = Math.max(5, Math.floor(rounds / 5));
  for (let i = 0; i < rounds + warmup; i++) {
    const t = performance.now();
    await compiled.instantiate({ args: ["bench"], allowedHosts: [], io: () => io });
    if (i >= warmup) times.push(performance.now() - t); // the first ones warm up the JIT (a pool refills steadily)
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { guest, kind: compiled.kind, p50Ms: at(0.5), p99Ms: at(0.99), compileMs };
}
