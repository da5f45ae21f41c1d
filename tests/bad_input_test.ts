/** Bad input, each with a clear error, and nothing already running disturbed. */

import assert from "node:assert/strict";
import { examplesDir, get, guestsDir, orca, type ServerProcess, startServer, writeProject } from "./harness.ts";

async function stillServing(server: ServerProcess) {
  const r = await get(`${server.httpUrl}/c/greet/still`);
  assert.equal(r.status, 200);
  assert.equal(r.text, "hello, still, from C!\n");
}

Deno.test("bad input is refused clearly and disturbs nothing", async (t) => {
  const server = await startServer();
  try {
    assert.equal((await orca(server, "deploy", examplesDir)).code, 0);

    await t.step("malformed TOML: file and line", async () => {
      const dir = await writeProject({ broken: `[[service]]\nname = "a"\nmodule = = "x.wasm"\n` });
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: Cannot parse .*services\/broken\/service\.toml: .*\(.*service\.toml:3:\d+\)$/m);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack trace without --verbose
      await stillServing(server);
    });

    await t.step("unknown key: the closest known key is suggested", async () => {
      const dir = await writeProject({ typo: `[[service]]\nname = "a"\nmodule = "a.wasm"\nreplica = 2\n` });
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /service "a": `replica` is not a known key \(did you mean `replicas`\?\) \(.*service\.toml:4\)/,
      );
    });

    await t.step("missing module file", async () => {
      const dir = await writeProject({ nomod: `[[service]]\nname = "a"\nmodule = "missing.wasm"\n` });
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /`module` not found: .*missing\.wasm/);
      assert.match(r.stderr, /hint: build the module first/);
    });

    await t.step("bytes that are not Wasm", async () => {
      const dir = await writeProject({
        notwasm: `[[service]]\nname = "a"\nmodule = "a.wasm"\ntriggers = ["http:/nw"]\n`,
      });
      await Deno.writeTextFile(`${dir}/services/notwasm/a.wasm`, "<html>not wasm</html>");
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /service "a": `module` is not WebAssembly \(no `\\0asm` header\): .*a\.wasm/);
      assert.equal((await get(`${server.httpUrl}/nw`)).status, 404);
      await stillServing(server);
    });

    await t.step("a component that traps on every request: 500, others keep serving", async () => {
      const dir = await writeProject({
        trap: `[[service]]\nname = "boom"\nmodule = "${guestsDir}/trap.wasm"\ntriggers = ["http:/boom"]\n`,
      });
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      for (let i = 0; i < 3; i++) {
        const r = await get(`${server.httpUrl}/boom`);
        assert.equal(r.status, 500);
        assert.match(r.text, /failed to handle the request/);
        await stillServing(server);
      }
      const logs = await orca(server, "logs", "boom");
      assert.match(logs.stdout, /GET \/boom failed: wasm trap: .*unreachable/);
    });

    await t.step("API without a token, or with a wrong one: 401", async () => {
      const none = await fetch(`${server.apiUrl}/api/v1/services`);
      assert.equal(none.status, 401);
      assert.equal((await none.json()).error.code, "unauthorized");
      const wrong = await fetch(`${server.apiUrl}/api/v1/services`, { headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 401);
      assert.equal((await wrong.json()).error.message, "wrong API token");
      const cli = await orca(server, "status", "--token", "nope");
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /error: wrong API token/);
      const mode = (await Deno.stat(`${server.home}/cluster.token`)).mode! & 0o777;
      assert.equal(mode, 0o600);
    });

    await t.step("route conflict: refused, naming both services", async () => {
      const dir = await writeProject({
        clash:
          `[[service]]\nname = "other"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/c/greet/:who"]\n`,
      });
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /route conflict: hello-c\/hello-c and clash\/other both claim path \/c\/greet\/:who/);
      await stillServing(server);
    });

    await t.step("usage errors exit 2", async () => {
      const r = await orca(undefined, "deploi");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown command "deploi" \(did you mean `deploy`\?\)/);
      const flag = await orca(undefined, "status", "--jsno");
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /did you mean `json`/);
    });

    await t.step("the server is unreachable: a clear error", async () => {
      const r = await orca(undefined, "status", "--server", "http://127.0.0.1:1", "--token", "x");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cannot reach the orca server at http:\/\/127\.0\.0\.1:1/);
    });
  } finally {
    await server.stop();
  }
});
