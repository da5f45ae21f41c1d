/**
 * What reuse_heap_test.ts and reset_heap_test.ts run: a reused instance, and an isolated one, must not grow without
 * bound over many requests. Measured here: the host's heap holds nothing
 * per request once collected (our wasi:http bridge drops what jco's glue is given), while a JavaScript guest's own
 * memory grows about 3 KB per request (StarlingMonkey); recycling after `maxReuses` requests, and at twice the first
 * size and 32 MiB more, bounds both. Over 100,000 requests: run in a child process with --expose-gc, so the heap is
 * measured after a full collection.
 *
 * An isolated instance is reset after each request (snapshot.ts): the guest used here leaves a resource open every
 * time (its response's headers), whose host object the reset lets go.
 */

import assert from "node:assert/strict";
import { guests, setup } from "./test_util.ts";

const REQUESTS = 100_000;
const WARM = 10_000;
type Mode = "reuse" | "isolated";

if (import.meta.main) {
  const mode = Deno.args[0] as Mode;
  const gc = (globalThis as unknown as { gc: () => void }).gc;
  const { runtime, deploy, cleanup } = await setup({ workers: 0, poolSize: 2 });
  const h = await deploy(await Deno.readFile(guests.reuse), { triggers: ["http:/*"], wasm: { instance: mode } });
  const heap = () => (gc(), Deno.memoryUsage().heapUsed);
  let warm = 0;
  let highest = 0;
  let guestMemory = 0;
  for (let i = 1; i <= REQUESTS; i++) {
    const res = await runtime.serveHttp(h, new Request("http://x/"), { params: {}, route: "/*" });
    const text = await res.text();
    if (res.status !== 200 || !text.startsWith("count=")) throw new Error(`request ${i}: ${res.status} ${text}`);
    if (i === WARM) warm = heap();
    if (i > WARM && i % 5_000 === 0) {
      highest = Math.max(highest, heap());
      guestMemory = Math.max(guestMemory, (await runtime.stats(h)).memoryBytes);
    }
  }
  console.log(JSON.stringify({ warm, highest, guestMemory, requests: (await runtime.stats(h)).requests }));
  await cleanup();
}

/** Runs this file's requests in a child process with --expose-gc, and checks what it measured. */
export async function heapStays(mode: Mode): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL(import.meta.url).pathname, mode],
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const { warm, highest, guestMemory, requests } = JSON.parse(
    new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
  );
  assert.equal(requests, REQUESTS);
  const grown = (highest - warm) / 2 ** 20;
  assert.ok(grown < 16, `the heap grew ${grown.toFixed(1)} MiB between ${WARM} and ${REQUESTS} requests`);
  // Reused: two instances (the pool), each recycled by 1,000 requests (about 3 MiB more) or at 9 + 32 MiB at most.
  // Isolated: an instance and its saved copy, 9 MiB each, and one made ahead.
  assert.ok(guestMemory < 96 * 2 ** 20, `guest memory reached ${(guestMemory / 2 ** 20).toFixed(1)} MiB`);
}
