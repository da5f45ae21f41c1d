/** What a guest can reach: only its declared env, no host files, allowed hosts only. */

import assert from "node:assert/strict";
import { get, guestsDir, healthyLoop, orca, startServer, writeProject } from "./harness.ts";

Deno.test("a guest sees only what its service declares", async (t) => {
  const target = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("secret data"));
  const server = await startServer(undefined, { SECRET_TOKEN: "host-secret", HOME: "/root" });
  const allowed = `127.0.0.1:${target.addr.port}`;
  const dir = await writeProject({
    sb: [
      `[[service]]\nname = "probe"\nmodule = "${guestsDir}/sandbox.wasm"\ntriggers = ["http:/probe"]\nenv = { DECLARED = "yes" }\n`,
      `[[service]]\nname = "egress-open"\nmodule = "${guestsDir}/egress.wasm"\ntriggers = ["http:/open"]\n`,
      `[service.wasm]\nallowed_hosts = ["${allowed}"]\n`,
      `[[service]]\nname = "egress-closed"\nmodule = "${guestsDir}/egress.wasm"\ntriggers = ["http:/closed"]\n`,
      `[[service]]\nname = "ok"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/ok"]\n`,
    ].join("\n"),
  });
  try {
    const r = await orca(server, "deploy", dir);
    assert.equal(r.code, 0, r.stderr);
    const healthy = healthyLoop(`${server.httpUrl}/ok`, "version 1\n");

    await t.step("no host files, no undeclared env", async () => {
      const { status, text } = await get(`${server.httpUrl}/probe`);
      assert.equal(status, 200);
      assert.match(text, /file \/etc\/passwd: denied/);
      assert.match(text, /file \/proc\/self\/environ: denied/);
      assert.match(text, /env HOME: \(unset\)/);
      assert.match(text, /env SECRET_TOKEN: \(unset\)/);
      assert.match(text, /env ORCA_HOME: \(unset\)/);
      assert.match(text, /env DECLARED: yes/);
    });

    await t.step("what a client says of itself in X-Forwarded-* is replaced by what the proxy saw", async () => {
      const { text } = await get(`${server.httpUrl}/probe`, {
        headers: { "x-forwarded-for": "6.6.6.6", forwarded: "for=6.6.6.6", "x-forwarded-proto": "https" },
      });
      const port = new URL(server.httpUrl).port;
      assert.match(text, /env HTTP_X_FORWARDED_FOR: 127\.0\.0\.1\n/);
      assert.match(text, /env HTTP_X_FORWARDED_PROTO: http\n/);
      assert.match(text, new RegExp(`env HTTP_X_FORWARDED_HOST: 127\\.0\\.0\\.1:${port}\n`));
      assert.match(
        text,
        new RegExp(`env HTTP_FORWARDED: for=127\\.0\\.0\\.1;proto=http;host="127\\.0\\.0\\.1:${port}"\n`),
      );
      assert.doesNotMatch(text, /6\.6\.6\.6/);
    });

    await t.step("outgoing HTTP only to allowed hosts", async () => {
      const url = encodeURIComponent(`http://${allowed}/`);
      const open = await get(`${server.httpUrl}/open?url=${url}`);
      assert.equal(open.text, `reached http://${allowed}/: 200 secret data`);
      const closed = await get(`${server.httpUrl}/closed?url=${url}`);
      assert.equal(closed.status, 502);
      assert.match(closed.text, /^blocked /);
      assert.doesNotMatch(closed.text, /secret data/);
      const elsewhere = await get(`${server.httpUrl}/open?url=${encodeURIComponent("http://127.0.0.2:9/")}`);
      assert.match(elsewhere.text, /^blocked /);
    });

    await t.step("a healthy service answered every request meanwhile", async () => {
      const seen = await healthy();
      assert.deepEqual(seen.failures, []);
      assert.ok(seen.ok > 0);
    });
  } finally {
    await server.stop();
    await target.shutdown();
  }
});

Deno.test("a memory bomb is capped: a clean 500, the server and other services unaffected", async () => {
  const server = await startServer();
  const dir = await writeProject({
    mem:
      `[[service]]\nname = "bomb"\nmodule = "${guestsDir}/bomb.wasm"\ntriggers = ["http:/bomb"]\n[service.resources]\nmemory = "64Mi"\n` +
      `[[service]]\nname = "roomy"\nmodule = "${guestsDir}/bomb.wasm"\ntriggers = ["http:/roomy"]\n[service.resources]\nmemory = "256Mi"\n` +
      `[[service]]\nname = "ok"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/ok"]\n`,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    const healthy = healthyLoop(`${server.httpUrl}/ok`, "version 1\n");
    for (let i = 0; i < 3; i++) {
      const bomb = await get(`${server.httpUrl}/bomb`);
      assert.equal(bomb.status, 500);
      assert.equal((await get(`${server.httpUrl}/ok`)).text, "version 1\n");
    }
    const logs = await orca(server, "logs", "bomb");
    assert.match(logs.stdout, /out of memory: 104857600 bytes refused/);
    // The same guest under a larger cap gets its 100 MB.
    assert.equal((await get(`${server.httpUrl}/roomy`)).text, "allocated 104857600 bytes\n");
    const seen = await healthy();
    assert.deepEqual(seen.failures, [], "a healthy service answered every request meanwhile");
    assert.ok(seen.ok > 0);
  } finally {
    await server.stop();
  }
});

Deno.test("an infinite loop is stopped at its deadline, endless recursion and a trap mid-response fail cleanly; others keep answering", async () => {
  const server = await startServer();
  const dir = await writeProject({
    cpu:
      `[[service]]\nname = "spin"\nmodule = "${guestsDir}/spin.wasm"\ntriggers = ["http:/spin"]\n[service.limits]\ntimeout_ms = 300\n` +
      `[[service]]\nname = "deep"\nmodule = "${guestsDir}/recurse.wasm"\ntriggers = ["http:/deep"]\n` +
      `[[service]]\nname = "trap"\nmodule = "${guestsDir}/trap.wasm"\ntriggers = ["http:/trap"]\n` +
      `[[service]]\nname = "ok"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/ok"]\n`,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    const healthy = healthyLoop(`${server.httpUrl}/ok`, "version 1\n");
    for (let i = 0; i < 2; i++) {
      const trap = await get(`${server.httpUrl}/trap`);
      assert.equal(trap.status, 500, "a trap after part of the response: that request fails, nothing partial is sent");
      assert.doesNotMatch(trap.text, /partial/);
      const deep = await get(`${server.httpUrl}/deep`);
      assert.equal(deep.status, 500, "endless recursion: that request fails");
      assert.equal((await get(`${server.httpUrl}/ok`)).text, "version 1\n");
    }
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const spin = await get(`${server.httpUrl}/spin`);
      const took = performance.now() - started;
      assert.equal(spin.status, 504);
      // Never early; stopped by its own check, before the backstop (deadline + 2 s) kills its host. How soon after
      // the deadline is measured by `deno task bench http` (the call here may include loading it into a second host).
      assert.ok(took >= 290 && took < 300 + 2000, `stopped after ${took.toFixed(0)} ms`);
      assert.equal((await get(`${server.httpUrl}/ok`)).text, "version 1\n");
    }
    const seen = await healthy();
    assert.deepEqual(seen.failures, [], "a healthy service answered every request meanwhile");
    assert.ok(seen.ok > 0);
    const logs = await orca(server, "logs", "spin");
    assert.match(logs.stdout, /failed: deadline exceeded: stopped after 300 ms/);
    const nodes = await orca(server, "nodes", "--json");
    assert.equal(
      JSON.parse(nodes.stdout)[0].wasmHosts.restarts,
      0,
      "the guests' own checks stopped them: no host killed",
    );
  } finally {
    await server.stop();
  }
});

Deno.test("[service.wasm] files: read-only unless rw, nothing outside, copies per instance", async () => {
  const server = await startServer();
  const dir = await writeProject({
    fs: `[[service]]\nname = "files"\nmodule = "${guestsDir}/files.wasm"\ntriggers = ["http:/files"]\n` +
      `[service.wasm]\nfiles = { "/data" = "./data", "/scratch" = "./scratch:rw" }\n`,
  });
  await Deno.mkdir(`${dir}/services/fs/data/sub`, { recursive: true });
  await Deno.mkdir(`${dir}/services/fs/scratch`, { recursive: true });
  await Deno.writeTextFile(`${dir}/services/fs/data/hello.txt`, "hello from the host\n");
  await Deno.writeTextFile(`${dir}/services/fs/data/sub/deep.txt`, "deeper\n");
  try {
    const r = await orca(server, "deploy", dir);
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < 2; i++) {
      const { status, text } = await get(`${server.httpUrl}/files`);
      assert.equal(status, 200);
      assert.equal(
        text,
        [
          "read /data/hello.txt: hello from the host",
          "read /data/sub/deep.txt: deeper",
          "write /data/new.txt: denied",
          "read /data/../../etc/passwd: denied",
          "read /etc/passwd: denied",
          "write /scratch/note.txt: ok",
          "read /scratch/note.txt: written",
          "",
        ].join("\n"),
      );
    }
    // The guest's writes stayed in its instance: the host folder is untouched.
    assert.deepEqual([...Deno.readDirSync(`${dir}/services/fs/scratch`)], []);
  } finally {
    await server.stop();
  }
});

Deno.test("large bodies stream through the proxy, in and out, while the guest runs", async () => {
  const server = await startServer();
  const dir = await writeProject({
    big: `[[service]]\nname = "stream"\nmodule = "${guestsDir}/stream.wasm"\ntriggers = ["http:/stream"]\n` +
      `[service.limits]\ntimeout_ms = 2000\n` +
      `[[service]]\nname = "echo"\nmodule = "${guestsDir}/echo.wasm"\ntriggers = ["http:/echo"]\n` +
      `[[service]]\nname = "js"\nmodule = "${guestsDir}/jsstream.wasm"\ntriggers = ["http:/js"]\n`,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    const whole = await get(`${server.httpUrl}/stream?kib=4096`);
    assert.equal(whole.status, 200);
    assert.equal(whole.text.length, 4096 * 1024, "4 MiB, all of it");
    assert.equal(whole.text.slice(-64, -55), "00065535 ");
    // It writes 512 KiB, then spins until its deadline: the client reads the body before that.
    const started = performance.now();
    const res = await fetch(`${server.httpUrl}/stream?kib=512&then=spin`);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let got = 0;
    let firstAfter = Infinity;
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        firstAfter = Math.min(firstAfter, performance.now() - started);
        got += r.value.length;
      }
    } catch {
      // the deadline cut the response off: expected
    }
    assert.ok(got >= 256 * 1024, `only ${got} bytes arrived`);
    assert.ok(firstAfter < 1500, `first bytes ${firstAfter.toFixed(0)} ms after the request, deadline 2000 ms`);
    const logs = await orca(server, "logs", "stream");
    assert.match(logs.stdout, /failed: deadline exceeded: stopped after 2000 ms/);
    // A 3 MiB upload streams into the guest (and its echo streams back).
    const upload = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff);
    const echoed = await fetch(`${server.httpUrl}/echo`, { method: "POST", body: upload });
    assert.equal(echoed.status, 200);
    assert.deepEqual(new Uint8Array(await echoed.arrayBuffer()), upload);
    // The same for a JavaScript (wasi:http) guest, with an upload of unknown length (chunked).
    const js = await fetch(`${server.httpUrl}/js?kib=4096`);
    assert.equal(js.status, 200);
    assert.equal((await js.arrayBuffer()).byteLength, 4096 * 1024);
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < upload.length; at += 256 * 1024) controller.enqueue(upload.slice(at, at + 256 * 1024));
        controller.close();
      },
    });
    const jsEchoed = await fetch(
      `${server.httpUrl}/js`,
      { method: "POST", body: chunked, duplex: "half" } as RequestInit,
    );
    assert.equal(jsEchoed.status, 200);
    assert.deepEqual(new Uint8Array(await jsEchoed.arrayBuffer()), upload);
  } finally {
    await server.stop();
  }
});
