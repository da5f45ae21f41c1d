import assert from "node:assert/strict";
import { OrcaError } from "../../errors.ts";
import type { LogLine } from "../types.ts";
import { guests, setup } from "./test_util.ts";

const ctx = { params: {}, route: "/*" };

Deno.test("a componentize-js wasi:http guest answers, one fresh instance per request", async () => {
  const { runtime, deploy, cleanup } = await setup();
  const h = await deploy(await Deno.readFile(guests.js));
  for (let i = 0; i < 3; i++) {
    const res = await runtime.serveHttp(h, new Request(`http://x/js/a?i=${i}`), { params: {}, route: "/js/*" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.path, "/js/a");
    assert.deepEqual(body.query, { i: String(i) });
    assert.equal(body.route, "/js/*");
  }
  const named = await runtime.serveHttp(h, new Request("http://x/hello/ada"), {
    params: { name: "ada" },
    route: "/hello/:name",
  });
  assert.equal(await named.text(), "hello, ada!\n");
  const stats = await runtime.stats(h);
  assert.equal(stats.requests, 4);
  assert.ok(stats.memoryBytes > 0);
  await runtime.remove(h);
  await cleanup();
});

Deno.test("a C preview1 command serves WAGI-style with its declared env", async () => {
  const { runtime, deploy, cleanup } = await setup();
  const h = await deploy(await Deno.readFile(guests.c), { env: { GREETING: "hi" } });
  const res = await runtime.serveHttp(h, new Request("http://x/c/x?q=1", { method: "POST", body: "b" }), ctx);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-served-by"), "hello-c");
  const text = await res.text();
  assert.equal(text, "hello from a C edge function\nmethod=POST path=/c/x query=q=1\ngreeting=hi\n");
  // Held whole, it says its length (sent in one piece; the access log need not count it).
  assert.equal(res.headers.get("content-length"), String(new TextEncoder().encode(text).length));
  const exec = await runtime.exec(h, []);
  assert.equal(exec.exitCode, 0);
  assert.match(new TextDecoder().decode(exec.stdout), /hello from a C edge function/);
  await cleanup();
});

for (const [mode, workers] of [["in a guest host", 1], ["in this process", 0]] as const) {
  Deno.test(`a guest that traps mid-response (${mode}) gets a 500; the workload keeps serving and logs the trap`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers });
    const h = await deploy(await Deno.readFile(guests.trap));
    for (let i = 0; i < 3; i++) {
      const res = await runtime.serveHttp(h, new Request("http://x/"), ctx);
      assert.equal(res.status, 500);
      await res.body?.cancel();
    }
    assert.equal((await runtime.status(h)).state, "running");
    assert.equal((await runtime.stats(h)).errors, 3);
    const lines: LogLine[] = [];
    for await (const line of runtime.logs(h)) lines.push(line);
    assert.ok(lines.some((l) => /failed: wasm trap/.test(l.text)), JSON.stringify(lines));
    assert.equal(runtime.hosts().restarts, 0, "a trap is not an incident of the host");
    await cleanup();
  });
}

Deno.test("the sandbox: no host files, no undeclared env", async () => {
  Deno.env.set("SECRET_TOKEN", "host-secret");
  const { runtime, deploy, cleanup } = await setup();
  const h = await deploy(await Deno.readFile(guests.sandbox), { env: { DECLARED: "yes" } });
  const text = await (await runtime.serveHttp(h, new Request("http://x/"), ctx)).text();
  assert.match(text, /file \/etc\/passwd: denied/);
  assert.match(text, /file \/proc\/self\/environ: denied/);
  assert.match(text, /env HOME: \(unset\)/);
  assert.match(text, /env SECRET_TOKEN: \(unset\)/);
  assert.match(text, /env DECLARED: yes/);
  assert.doesNotMatch(text, /READABLE|host-secret/);
  await cleanup();
});

Deno.test("bytes that are not Wasm are rejected with a wasm error", async () => {
  const { deploy, cleanup } = await setup();
  await assert.rejects(deploy(new TextEncoder().encode("#!/bin/sh\necho not wasm\n")), (err) => {
    assert.ok(err instanceof OrcaError);
    assert.equal(err.code, "wasm");
    assert.match(err.message, /not WebAssembly/);
    return true;
  });
  await cleanup();
});

Deno.test("an idle service scales to zero, and its next request is still answered", async () => {
  const { runtime, deploy, cleanup } = await setup({ idleMs: 60 });
  const h = await deploy(await Deno.readFile(guests.c));
  // One call first: its memory is kept for the next instance, until the service goes idle.
  assert.equal((await runtime.serveHttp(h, new Request("http://x/c/first"), ctx)).status, 200);
  for (const until = Date.now() + 5000; (await runtime.status(h)).instances > 0 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const idle = await runtime.status(h);
  assert.equal(idle.instances, 0);
  assert.equal((await runtime.stats(h)).memoryBytes, 0, "no memory kept for reuse either");
  assert.equal(idle.message, "idle: scaled to zero");
  const res = await runtime.serveHttp(h, new Request("http://x/c/again"), ctx);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /path=\/c\/again/);
  await cleanup();
});

const modes = [["in a guest host", 1], ["in this process", 0]] as const;

for (const [mode, workers] of modes) {
  Deno.test(`a preview1 command runs on the direct host (${mode}); nothing of one request reaches the next`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers });
    try {
      const h = await deploy(await Deno.readFile(guests.leak));
      const lines: LogLine[] = [];
      for await (const line of runtime.logs(h)) lines.push(line);
      assert.match(lines.map((l) => l.text).join("\n"), /started \(WAGI command, preview1\)/);
      // Its memories are recycled between requests: each starts zeroed, though the last left a secret in it.
      for (let i = 0; i < 12; i++) {
        const res = await runtime.serveHttp(h, new Request(`http://x/leak?i=${i}`), ctx);
        assert.equal(await res.text(), "clean\n", `request ${i}`);
      }
      // Side by side too.
      const answers = await Promise.all(
        [1, 2, 3, 4, 5, 6].map(async () => (await runtime.serveHttp(h, new Request("http://x/"), ctx)).text()),
      );
      assert.deepEqual(answers, Array(6).fill("clean\n"));
    } finally {
      await cleanup();
    }
  });
}
/** The streaming guests: the same behaviour in C (WAGI) and in JavaScript (wasi:http, componentize-js). */
const streamers = [
  ["a WAGI", { response: guests.stream, echo: guests.echo, echoPath: "/echo" }],
  ["a wasi:http", { response: guests.jsstream, echo: guests.jsstream, echoPath: "/" }],
] as const;

for (const [mode, workers] of modes) {
  for (const [kind, guest] of streamers) {
    Deno.test(`${kind} guest's large response streams (${mode}): it starts before the guest is done`, async () => {
      const { runtime, deploy, cleanup } = await setup({ workers });
      try {
        const h = await deploy(await Deno.readFile(guest.response), { limits: { timeout_ms: 1500 } });
        // 1 MiB, all of it.
        const whole = await runtime.serveHttp(h, new Request("http://x/s?kib=1024"), ctx);
        assert.equal(whole.status, 200);
        const text = await whole.text();
        assert.equal(text.length, 1024 * 1024);
        if (guest.response === guests.stream) {
          const lines = text.split("\n"); // numbered lines, in order
          assert.equal(lines[0].slice(0, 8), "00000000");
          assert.equal(lines[16383].slice(0, 8), "00016383");
        }
        // 256 KiB, then it spins: the client has most of the body (and a 200) long before the deadline stops the
        // guest, then the stream ends in an error (what was written just before the spin may not get out).
        const started = performance.now();
        const spun = await runtime.serveHttp(h, new Request("http://x/s?kib=256&then=spin"), ctx);
        assert.equal(spun.status, 200);
        const reader = spun.body!.getReader();
        let got = 0;
        let firstBytesAfter = Infinity;
        await assert.rejects(async () => {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            firstBytesAfter = Math.min(firstBytesAfter, performance.now() - started);
            got += value.length;
          }
        }, /deadline exceeded/);
        assert.ok(got >= 128 * 1024, `only ${got} bytes arrived`);
        assert.ok(firstBytesAfter < 1000, `the first bytes came ${firstBytesAfter.toFixed(0)} ms after the request`);
        for (const until = Date.now() + 5000; (await runtime.stats(h)).errors < 1 && Date.now() < until;) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal((await runtime.stats(h)).errors, 1);
        // A small response is whole (buffered, not streamed).
        const small = await runtime.serveHttp(h, new Request("http://x/s?kib=4"), ctx);
        assert.equal(small.headers.get("content-length"), "4096");
        assert.equal((await small.text()).length, 4096);
      } finally {
        await cleanup();
      }
    });
  }
}

for (const [mode, workers] of modes) {
  for (const [kind, guest] of streamers) {
    for (const sized of [true, false]) {
      // CGI needs the length up front: a WAGI guest gets a body of unknown length whole.
      if (!sized && guest.echo === guests.echo) continue;
      const length = sized ? "with a Content-Length" : "chunked";
      Deno.test(`${kind} guest reads a large request body (${length}) as it arrives (${mode}): it answers before the client has sent it all`, async () => {
        const { runtime, deploy, cleanup } = await setup({ workers });
        try {
          const h = await deploy(await Deno.readFile(guest.echo), { limits: { timeout_ms: 5000 } });
          const half = 256 * 1024;
          const part = (n: number) => new Uint8Array(half).map((_, i) => (i * 7 + n) & 0xff);
          let sendRest!: () => void;
          const restWanted = new Promise<void>((resolve) => sendRest = resolve);
          const body = new ReadableStream<Uint8Array>({
            async start(controller) {
              controller.enqueue(part(1));
              await restWanted; // the rest only once the echo of the first half came back: a buffered body would deadlock
              controller.enqueue(part(2));
              controller.close();
            },
          });
          const request = new Request(`http://x${guest.echoPath}`, {
            method: "POST",
            body,
            headers: sized ? { "content-length": String(2 * half) } : {},
            duplex: "half",
          } as RequestInit);
          const res = await runtime.serveHttp(h, request, ctx);
          assert.equal(res.status, 200);
          const reader = res.body!.getReader();
          const got: Uint8Array[] = [];
          let size = 0;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            got.push(value);
            size += value.length;
            if (size >= half) sendRest();
          }
          assert.equal(size, 2 * half);
          const echoed = new Uint8Array(size);
          let at = 0;
          for (const g of got) {
            echoed.set(g, at);
            at += g.length;
          }
          assert.deepEqual(echoed.subarray(0, half), part(1));
          assert.deepEqual(echoed.subarray(half), part(2));
        } finally {
          await cleanup();
        }
      });
    }
  }
}
