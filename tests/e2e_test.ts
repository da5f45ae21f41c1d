/**
 * End to end: a real `orca server` process, the real CLI, real components
 * built from source, real sockets.
 */

import assert from "node:assert/strict";
import { cliPath, examplesDir, get, getWithHost, guestsDir, orca, startServer, writeProject } from "./harness.ts";

Deno.test("deploy the examples and serve them through the proxy", async (t) => {
  const server = await startServer();
  try {
    await t.step("orca deploy creates both examples", async () => {
      const r = await orca(server, "deploy", examplesDir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /hello-js\/hello-js\s+created/);
      assert.match(r.stdout, /hello-c\/hello-c\s+created/);
      assert.match(r.stdout, /deploy 1: 2 created/);
    });

    await t.step("the JS component answers, with route params", async () => {
      const r = await get(`${server.httpUrl}/js/some/path?x=1`);
      assert.equal(r.status, 200);
      const body = JSON.parse(r.text);
      assert.equal(body.path, "/js/some/path");
      assert.deepEqual(body.query, { x: "1" });
      assert.equal((await get(`${server.httpUrl}/hello/ada`)).text, "hello, ada!\n");
    });

    await t.step("the C component answers WAGI-style, with route params", async () => {
      const r = await get(`${server.httpUrl}/c/x?q=2`, { method: "POST", body: "data" });
      assert.equal(r.status, 200);
      assert.match(r.text, /method=POST path=\/c\/x query=q=2/);
      assert.match(r.text, /greeting=bonjour/);
      assert.equal((await get(`${server.httpUrl}/c/greet/bob`)).text, "hello, bob, from C!\n");
    });

    await t.step("domain routing by Host header", async () => {
      const r = await getWithHost(server.httpUrl, "/anything", "c.localhost");
      assert.equal(r.status, 200);
      assert.match(r.text, /hello from a C edge function/);
    });

    await t.step("no route: 404 with a short JSON body", async () => {
      const r = await get(`${server.httpUrl}/nowhere`);
      assert.equal(r.status, 404);
      assert.deepEqual(JSON.parse(r.text), { error: "no route", host: "127.0.0.1", path: "/nowhere" });
    });

    await t.step("redeploying the same config is a no-op", async () => {
      const r = await orca(server, "deploy", examplesDir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /nothing changed: 2 service\(s\) already up to date/);
      const deploys = await fetch(`${server.apiUrl}/api/v1/deploys`, {
        headers: { authorization: `Bearer ${server.token}` },
      });
      assert.equal((await deploys.json()).deploys.length, 1);
    });

    await t.step("orca status lists services, as a table and as JSON", async () => {
      const table = await orca(server, "status");
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /PROJECT\s+NAME\s+RUNTIME\s+ROUTES\s+STATE\s+INSTANCES/);
      assert.match(table.stdout, /hello-c\s+hello-c\s+wasm\s+\/c\/\* \/c\/greet\/:name c\.localhost\/\*\s+running/);
      const json = JSON.parse((await orca(server, "status", "--json")).stdout);
      assert.deepEqual(json.map((s: { name: string }) => s.name), ["hello-c", "hello-js"]);
      assert.ok(json.every((s: { state: string; instances: number }) => s.state === "running" && s.instances >= 1));
    });

    await t.step("orca nodes reports this node and its runtimes", async () => {
      const nodes = JSON.parse((await orca(server, "nodes", "--json")).stdout);
      assert.equal(nodes.length, 1);
      assert.equal(nodes[0].runtimes.wasm, true);
      assert.equal(nodes[0].id, (await Deno.readTextFile(`${server.home}/node.id`)).trim());
    });

    await t.step("orca logs shows what the service logged", async () => {
      const r = await orca(server, "logs", "hello-c");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /system\s+started \(WAGI command, preview1\)/);
      const js = await orca(server, "logs", "hello-js/hello-js", "--tail", "1");
      assert.match(js.stdout, /^\S+ stdout GET \/hello\/ada\n$/);
    });

    await t.step("orca logs -f follows new lines", async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cliPath, "logs", "hello-js", "-f", "--tail", "0", "--server", server.apiUrl],
        env: { ORCA_HOME: server.home, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "null",
      }).spawn();
      let seen = "";
      const reading = (async () => {
        for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) seen += chunk;
      })();
      const until = Date.now() + 10_000;
      while (!seen.includes("GET /js/followed") && Date.now() < until) {
        await get(`${server.httpUrl}/js/followed`);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill();
      await child.status;
      await reading;
      assert.match(seen, /stdout GET \/js\/followed/);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("a new module version takes over with no failed request, and survives a restart", async (t) => {
  const server = await startServer();
  const dir = await writeProject({
    ver: `[[service]]\nname = "ver"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/ver"]\n`,
  });
  try {
    await t.step("version 1 serves", async () => {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      assert.equal((await get(`${server.httpUrl}/ver`)).text, "version 1\n");
    });

    await t.step("redeploy with version 2 under a concurrent request loop", async () => {
      let running = true;
      const seen = new Map<string, number>();
      const failures: string[] = [];
      const loop = async () => {
        while (running) {
          const r = await get(`${server.httpUrl}/ver`);
          if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
          seen.set(r.text, (seen.get(r.text) ?? 0) + 1);
        }
      };
      const loops = [loop(), loop(), loop()];
      await new Promise((r) => setTimeout(r, 200));
      await Deno.writeTextFile(
        `${dir}/services/ver/service.toml`,
        `[[service]]\nname = "ver"\nmodule = "${guestsDir}/version2.wasm"\ntriggers = ["http:/ver"]\n`,
      );
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ver\/ver\s+updated/);
      // Wait until the new version answers, then a little more.
      const until = Date.now() + 10_000;
      while (!seen.has("version 2\n") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      running = false;
      await Promise.all(loops);
      assert.deepEqual(failures, []);
      assert.ok(seen.get("version 1\n")! > 0 && seen.get("version 2\n")! > 0, JSON.stringify([...seen]));
      assert.equal((await get(`${server.httpUrl}/ver`)).text, "version 2\n");
    });

    await t.step("after a restart the services serve again without a deploy", async () => {
      await server.stop();
      const again = await startServer(server.home);
      try {
        assert.equal((await get(`${again.httpUrl}/ver`)).text, "version 2\n");
        const status = JSON.parse((await orca(again, "status", "--json")).stdout);
        assert.equal(status[0].version, 2);
      } finally {
        await again.stop();
      }
    });
  } finally {
    await server.stop();
  }
});
