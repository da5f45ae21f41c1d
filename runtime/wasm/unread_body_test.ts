/**
 * Hostile request bodies: a body the guest never reads (over 64 KiB, so it
 * streams into the guest host) is dropped, and no client input ends a host.
 * Requests go through a real socket to a Deno.serve in front of the runtime.
 */

import assert from "node:assert/strict";
import { guests, setup } from "./test_util.ts";

const ctx = { params: {}, route: "/*" };
const BIG = 1024 * 1024;

/** A chunked body of `size` bytes, sent 16 KiB at a time. */
function chunked(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(left, 16 * 1024);
      left -= n;
      controller.enqueue(new Uint8Array(n).fill(65));
    },
  });
}

for (const [mode, workers] of [["in a guest host", 1], ["in this process", 0]] as const) {
  Deno.test(`a large body a guest does not read is dropped (${mode}); its host lives on`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers, poolSize: 1 });
    const c = await deploy(await Deno.readFile(guests.c));
    const js = await deploy(await Deno.readFile(guests.js));
    const ok = await deploy(await Deno.readFile(guests.version1));
    const handles = { c, js, ok } as const;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const name = new URL(req.url).pathname.slice(1) as keyof typeof handles;
      return runtime.serveHttp(handles[name], req, ctx);
    });
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      for (const name of ["c", "js"] as const) {
        for (let round = 0; round < 3; round++) {
          // Content-Length (streams into the host), then chunked. hello-js reads a POST's body only: PUT it.
          const sized = await fetch(`${base}/${name}`, { method: "PUT", body: new Uint8Array(BIG).fill(66) });
          assert.equal(sized.status, 200, `${name}, with Content-Length`);
          await sized.arrayBuffer();
          const streamed = await fetch(`${base}/${name}`, { method: "PUT", body: chunked(BIG) });
          assert.equal(streamed.status, 200, `${name}, chunked`);
          await streamed.arrayBuffer();
        }
        // The other service on the same host still answers.
        const other = await fetch(`${base}/ok`);
        assert.equal(other.status, 200);
        assert.equal(await other.text(), "version 1\n");
      }
      assert.equal(runtime.hosts().restarts, 0, "no guest host was lost");
      assert.equal((await runtime.stats(c)).incidents, 0);
      assert.equal((await runtime.stats(js)).incidents, 0);
    } finally {
      await server.shutdown();
      await cleanup();
    }
  });
}

for (const [kind, guest] of [["WAGI", guests.stream], ["wasi:http", guests.jsstream]] as const) {
  Deno.test(`a ${kind} guest whose client goes away mid-response stops writing; its host lives on`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers: 1, poolSize: 1 });
    try {
      const h = await deploy(await Deno.readFile(guest), { limits: { timeout_ms: 5000 } });
      const ok = await deploy(await Deno.readFile(guests.version1));
      for (let round = 0; round < 3; round++) {
        // 256 MiB: far more than a client could be sent before it goes away.
        const res = await runtime.serveHttp(h, new Request("http://x/s?kib=262144"), ctx);
        assert.equal(res.status, 200);
        const reader = res.body!.getReader();
        await reader.read();
        await reader.cancel();
      }
      if (kind === "WAGI") {
        // The host is told: the guest's next write fails, and it says why (a wasi:http guest is told its stream is
        // closed, which componentize-js takes quietly).
        let logs = "";
        for (const until = Date.now() + 10_000; !/client went away/.test(logs) && Date.now() < until;) {
          await new Promise((r) => setTimeout(r, 50));
          logs = "";
          for await (const line of runtime.logs(h)) logs += `${line.text}\n`;
        }
        assert.match(logs, /client went away while the response streamed/);
      }
      assert.equal(await (await runtime.serveHttp(ok, new Request("http://x/ok"), ctx)).text(), "version 1\n");
      assert.equal(runtime.hosts().restarts, 0, "no guest host was lost");
    } finally {
      await cleanup();
    }
  });
}
