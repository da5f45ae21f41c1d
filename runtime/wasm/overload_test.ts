/**
 * One service's load does not take down others: a flood of calls to a
 * JavaScript service through a real socket is answered within its limits
 * (the excess with 503 and Retry-After at once), its guest hosts live on, and
 * a C service on the same hosts keeps answering. A host lost while calls wait
 * in it costs the calls that had not begun nothing.
 */

import assert from "node:assert/strict";
import type { WorkloadHandle } from "../types.ts";
import { guests, setup } from "./test_util.ts";

const ctx = { params: {}, route: "/*" };

Deno.test("a flooded service answers what it can and refuses the rest at once; its hosts and neighbours live on", async () => {
  const deadlineMs = 20_000;
  const { runtime, deploy, cleanup } = await setup({ workers: 2, poolSize: 1, concurrency: 2, queue: 4 });
  const js = await deploy(await Deno.readFile(guests.js), { limits: { timeout_ms: deadlineMs } });
  const c = await deploy(await Deno.readFile(guests.c));
  const handles: Record<string, WorkloadHandle> = { js, c };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    return runtime.serveHttp(handles[new URL(req.url).pathname.slice(1)], req, ctx);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    // Both services loaded into both hosts first.
    for (let i = 0; i < 4; i++) {
      await Promise.all(["js", "c"].map(async (name) => (await fetch(`${base}/${name}`)).arrayBuffer()));
    }
    const flood = Array.from({ length: 120 }, async () => {
      const started = performance.now();
      const res = await fetch(`${base}/js`);
      const body = await res.text();
      return {
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        body,
        took: performance.now() - started,
      };
    });
    // A C service on the same hosts answers during the flood.
    const neighbour: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/c`);
      await res.arrayBuffer();
      neighbour.push(res.status);
    }
    const answers = await Promise.all(flood);
    assert.deepEqual(neighbour, Array(5).fill(200));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(ok.length + refused.length, answers.length, `other statuses: ${answers.map((a) => a.status)}`);
    assert.ok(ok.length >= 2, `${ok.length} answered`);
    assert.ok(refused.length > 0, "nothing was refused");
    for (const r of refused) {
      assert.equal(r.retryAfter, "1");
      assert.match(r.body, /overloaded: 2 calls run and 4 wait; retry later/);
      // Refused without waiting for a turn, let alone for the deadline.
      assert.ok(r.took < deadlineMs / 2, `a refusal came after ${r.took.toFixed(0)} ms`);
    }
    assert.equal(runtime.hosts().restarts, 0, "no guest host was lost");
    assert.equal((await runtime.stats(js)).incidents, 0);
    let logs = "";
    for await (const line of runtime.logs(js)) logs += `${line.text}\n`;
    assert.match(logs, /overloaded: \d+ call\(s\) answered 503 \(2 run at once, 4 may wait\)/);
    // Once the flood is over, the service answers again.
    const after = await fetch(`${base}/js`);
    assert.equal(after.status, 200);
    await after.arrayBuffer();
  } finally {
    await server.shutdown();
    await cleanup();
  }
});

Deno.test("calls waiting in a guest host that is killed run on its replacement (their guests had not begun)", async () => {
  const { runtime, deploy, cleanup } = await setup({ workers: 1, graceMs: 300, instrument: false });
  try {
    const spin = await deploy(await Deno.readFile(guests.spin), { limits: { timeout_ms: 200 } });
    const ok = await deploy(await Deno.readFile(guests.version1));
    const small = new Uint8Array(1000).fill(1);
    const large = new Uint8Array(256 * 1024).fill(2);
    // The only host spins until it is killed (deadline and grace); calls sent meanwhile wait in it, unstarted.
    const spinning = runtime.serveHttp(spin, new Request("http://x/spin"), ctx);
    await new Promise((r) => setTimeout(r, 100));
    const waiting = [undefined, small, large].map(async (body) => {
      const req = new Request("http://x/ok", { method: body ? "POST" : "GET", body });
      const res = await runtime.serveHttp(ok, req, ctx);
      return `${res.status} ${await res.text()}`;
    });
    assert.equal((await spinning).status, 504);
    assert.deepEqual(await Promise.all(waiting), Array(3).fill("200 version 1\n"));
    assert.equal(runtime.hosts().restarts, 1);
    assert.equal((await runtime.stats(ok)).incidents, 0, "no call of the healthy service was lost");
  } finally {
    await cleanup();
  }
});
