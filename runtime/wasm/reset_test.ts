/**
 * Isolated instances by snapshot reset: a wasi:http guest's instance serves request after request, its state put
 * back after each to what it was right after instantiation. Nothing one request leaves (module-level variables, a
 * global array, a secret it kept) reaches the next; a request that grows the memory gets its instance replaced; a
 * writable mount means a fresh instance per request, said in the status.
 */

import assert from "node:assert/strict";
import { sha256Hex } from "../../config/mod.ts";
import { prepareComponent } from "./compile.ts";
import { Executor } from "./executor.ts";
import { guests, setup } from "./test_util.ts";

const ctx = { params: {}, route: "/*" };
const modes = [["in a guest host", 1], ["in this process", 0]] as const;

type Runtime = Awaited<ReturnType<typeof setup>>["runtime"];

async function get(runtime: Runtime, h: { id: string }, query = "") {
  const res = await runtime.serveHttp(h as never, new Request(`http://x/${query}`), ctx);
  return { status: res.status, text: await res.text() };
}

for (const [mode, workers] of modes) {
  Deno.test(`reset (${mode}): a JavaScript guest's module state never reaches the next request`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 2 });
    try {
      const h = await deploy(await Deno.readFile(guests.remember), { triggers: ["http:/*"] });
      for (let i = 0; i < 40; i++) {
        assert.equal((await get(runtime, h, `?secret=s${i}`)).text, "previous= seen=0\n", `request ${i}`);
      }
      const made = (await runtime.stats(h as never)).instancesMade!;
      assert.ok(made <= 3, `instances reset, not made anew: ${made} made for 40 requests`);
      // Concurrent requests too: each sees the pristine state.
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) => get(runtime, h, `?secret=c${i}`).then((r) => r.text)),
      );
      assert.deepEqual(new Set(answers), new Set(["previous= seen=0\n"]));
      assert.equal((await runtime.status(h as never)).message, undefined);
    } finally {
      await cleanup();
    }
  });

  Deno.test(`reset (${mode}): a C WAGI guest's statics and stack never reach the next request`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 2 });
    try {
      const h = await deploy(await Deno.readFile(guests.statics));
      for (let i = 0; i < 30; i++) {
        assert.equal((await get(runtime, h, `?i=${i}`)).text, "count=1 kept=- stack=clean\n", `request ${i}`);
      }
      const made = (await runtime.stats(h as never)).instancesMade!;
      assert.ok(made <= 3, `instances reset, not made anew: ${made} made for 30 requests`);
      const answers = await Promise.all(Array.from({ length: 12 }, () => get(runtime, h).then((r) => r.text)));
      assert.deepEqual(new Set(answers), new Set(["count=1 kept=- stack=clean\n"]));
      // A guest whose memory grows (leak.c mallocs 256 KiB) cannot be put back: a clean instance each time.
      const leak = await deploy(await Deno.readFile(guests.leak));
      for (let i = 0; i < 4; i++) assert.equal((await get(runtime, leak)).text, "clean\n", `leak request ${i}`);
    } finally {
      await cleanup();
    }
  });

  Deno.test(`reset (${mode}): a request that grows the memory gets its instance replaced, clean`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 1 });
    try {
      const h = await deploy(await Deno.readFile(guests.remember), { triggers: ["http:/*"] });
      assert.equal((await get(runtime, h, "?secret=a")).text, "previous= seen=0\n");
      const made = (await runtime.stats(h as never)).instancesMade!;
      // 16 MiB more than a JavaScript guest starts with: its memory must grow.
      assert.equal((await get(runtime, h, "?secret=big&grow=16384")).text, "previous= seen=1\n");
      assert.equal((await get(runtime, h, "?secret=b")).text, "previous= seen=0\n");
      assert.ok((await runtime.stats(h as never)).instancesMade! > made, "the grown instance was replaced");
    } finally {
      await cleanup();
    }
  });

  Deno.test(`reset (${mode}): a FetchEvent guest answers each request on its own, from a reset instance`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 2 });
    try {
      const h = await deploy(await Deno.readFile(guests.js), { triggers: ["http:/*"] });
      for (let i = 0; i < 10; i++) {
        const { status, text } = await get(runtime, h, `?i=${i}`);
        assert.equal(status, 200);
        assert.deepEqual(JSON.parse(text).query, { i: String(i) });
      }
      assert.ok((await runtime.stats(h as never)).instancesMade! <= 4);
    } finally {
      await cleanup();
    }
  });
}

Deno.test("reset: a hand-written WAT wasi:http handler (a component of its own cores) is reset too", async () => {
  const { runtime, deploy, cleanup } = await setup({ workers: 0, poolSize: 2 });
  try {
    const h = await deploy(await Deno.readFile(guests.wat), { triggers: ["http:/*"] });
    for (let i = 0; i < 50; i++) assert.equal((await get(runtime, h, `?i=${i}`)).text, "hello from wat\n");
    assert.ok((await runtime.stats(h as never)).instancesMade! <= 3);
    assert.equal((await runtime.status(h as never)).message, undefined);
  } finally {
    await cleanup();
  }
});

Deno.test("reset: a trap or a deadline drops the instance; the next request is clean", async () => {
  const { runtime, deploy, cleanup } = await setup({ workers: 0, poolSize: 1 });
  try {
    const h = await deploy(await Deno.readFile(guests.reuse), { triggers: ["http:/*"], limits: { timeout_ms: 500 } });
    assert.equal((await get(runtime, h)).text, "count=1 kept=0\n");
    assert.equal((await get(runtime, h, "?trap")).status, 500);
    assert.equal((await get(runtime, h)).text, "count=1 kept=0\n");
    assert.equal((await get(runtime, h, "?spin")).status, 504);
    assert.equal((await get(runtime, h, "?grow=8")).text, "count=1 kept=1\n");
    assert.equal((await get(runtime, h)).text, "count=1 kept=0\n");
  } finally {
    await cleanup();
  }
});

Deno.test("reset: a service with a writable mount gets a fresh instance per request, and says why", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "orca-reset-test-" });
  const logs: string[] = [];
  const executor = new Executor({ log: (_, __, text) => logs.push(text), idleMs: 60_000 });
  try {
    const bytes = await Deno.readFile(guests.remember);
    const prepared = await prepareComponent(bytes, await sha256Hex(bytes), cacheDir);
    assert.equal(prepared.resettable, true);
    const desc = { id: "p/rw@1", name: "rw", project: "p", prepared, env: {}, allowedHosts: [], poolSize: 1 };
    await executor.load({ ...desc, mounts: [{ guestPath: "/scratch", rw: true, files: [] }] });
    const stats = await executor.stats("p/rw@1");
    assert.match(stats.notReset ?? "", /writable volume/);
    assert.ok(logs.some((l) => /fresh instance: it mounts a writable volume/.test(l)), logs.join("\n"));
    const req = (i: number) => ({ method: "GET", url: `http://x/?secret=${i}`, headers: [], body: null, ctx });
    for (let i = 0; i < 3; i++) {
      const res = await executor.http("p/rw@1", req(i));
      assert.equal(new TextDecoder().decode(res.body as Uint8Array), "previous= seen=0\n");
    }
    assert.ok((await executor.stats("p/rw@1")).made! >= 3, "one instance per request");
  } finally {
    executor.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
