/**
 * `[service.wasm] instance = "reuse"`: a wasi:http guest's instance serves request after request (its module-level
 * state lives on), and is replaced after a number of requests, a trap, a deadline or memory growth; isolated (the
 * default) gives every request a pristine instance. A FetchEvent guest, whose engine answers once per instance, is
 * never reused, and says so.
 */

import assert from "node:assert/strict";
import { OrcaError } from "../../errors.ts";
import type { LogLine } from "../types.ts";
import { guests, setup } from "./test_util.ts";

const ctx = { params: {}, route: "/*" };
const modes = [["in a guest host", 1], ["in this process", 0]] as const;

async function get(runtime: Awaited<ReturnType<typeof setup>>["runtime"], h: { id: string }, query = "") {
  const res = await runtime.serveHttp(h as never, new Request(`http://x/${query}`), ctx);
  return { status: res.status, text: await res.text() };
}

for (const [mode, workers] of modes) {
  Deno.test(`reuse (${mode}): one instance serves request after request; isolated gives each a new one`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 1, maxReuses: 5 });
    try {
      const bytes = await Deno.readFile(guests.reuse);
      const isolated = await deploy(bytes, { triggers: ["http:/*"] });
      for (let i = 0; i < 3; i++) assert.equal((await get(runtime, isolated)).text, "count=1 kept=0\n");
      const reused = await deploy(bytes, { triggers: ["http:/*"], wasm: { instance: "reuse" } });
      const counts = [];
      for (let i = 0; i < 7; i++) counts.push((await get(runtime, reused)).text.trim());
      // Replaced after 5 requests: the sixth starts from a pristine instance.
      assert.deepEqual(counts.map((c) => Number(/count=(\d+)/.exec(c)![1])), [1, 2, 3, 4, 5, 1, 2]);
      assert.equal((await runtime.status(reused)).message, undefined);
    } finally {
      await cleanup();
    }
  });

  Deno.test(`reuse (${mode}): a trap, a deadline and memory growth each replace the instance`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 1 });
    try {
      const h = await deploy(await Deno.readFile(guests.reuse), {
        triggers: ["http:/*"],
        wasm: { instance: "reuse" },
        limits: { timeout_ms: 500 },
      });
      assert.equal((await get(runtime, h)).text, "count=1 kept=0\n");
      assert.equal((await get(runtime, h)).text, "count=2 kept=0\n");
      assert.equal((await get(runtime, h, "?trap")).status, 500);
      assert.equal((await get(runtime, h)).text, "count=1 kept=0\n", "a new instance after the trap");
      assert.equal((await get(runtime, h)).text, "count=2 kept=0\n");
      assert.equal((await get(runtime, h, "?spin")).status, 504);
      assert.equal((await get(runtime, h)).text, "count=1 kept=0\n", "a new instance after the deadline");
      // Each request keeps 1 MiB more: once its memory is past twice its first size and 32 MiB more (a JS guest
      // starts near 9 MiB), the instance is replaced after the request that grew it.
      let replacedAfter = 0;
      for (let mib = 1; mib <= 60 && !replacedAfter; mib++) {
        if ((await get(runtime, h, "?grow=1024")).text === "count=1 kept=1\n") replacedAfter = mib - 1;
      }
      assert.ok(replacedAfter >= 28 && replacedAfter <= 40, `replaced after ${replacedAfter} MiB more`);
    } finally {
      await cleanup();
    }
  });

  Deno.test(`reuse (${mode}): a FetchEvent guest is never reused, says why, and answers every request`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 1 });
    try {
      const h = await deploy(await Deno.readFile(guests.js), { triggers: ["http:/*"], wasm: { instance: "reuse" } });
      for (let i = 0; i < 4; i++) {
        const res = await runtime.serveHttp(h, new Request(`http://x/js/a?i=${i}`), ctx);
        assert.equal(res.status, 200);
        assert.deepEqual((await res.json()).query, { i: String(i) });
      }
      assert.match((await runtime.status(h)).message ?? "", /not reused .*FetchEvent listener/);
      const lines: LogLine[] = [];
      for await (const line of runtime.logs(h)) lines.push(line);
      assert.ok(lines.some((l) => l.stream === "system" && /instance = "reuse" is not possible/.test(l.text)));
    } finally {
      await cleanup();
    }
  });
}

Deno.test("reuse is refused at deploy for a WASI command, naming the service and what to do", async () => {
  const { runtime, cleanup } = await setup({ workers: 0 });
  try {
    const { sha256Hex, readService } = await import("../../config/mod.ts");
    const bytes = await Deno.readFile(guests.c);
    const hash = await sha256Hex(bytes);
    const service = readService(
      { name: "cmd", module: "x.wasm", module_hash: hash, wasm: { instance: "reuse" } },
      { file: "test" },
      "p",
      [],
      { api: true },
    );
    // The runtime of setup() loads modules it was given; this one is loaded through a deploy of the same bytes.
    await assert.rejects(
      async () => {
        const { runtime: r2, deploy, cleanup: c2 } = await setup({ workers: 0 });
        try {
          await deploy(bytes, { wasm: { instance: "reuse" } });
        } finally {
          await c2();
          r2.close();
        }
      },
      (err: unknown) =>
        err instanceof OrcaError && /instance = "reuse" applies to wasi:http handlers/.test(err.message) &&
        /WASI command/.test(err.hint ?? ""),
    );
    assert.equal(service.wasm.instance, "reuse");
  } finally {
    runtime.close();
    await cleanup();
  }
});
