/**
 * Secrets end to end: set from stdin, a file or the command line; put into a guest's env; a new value restarts the
 * service; refused when missing or still used; hostile names and values; and the planted values never show up in any
 * output, the API's answers, or the store's files.
 */

import assert from "node:assert/strict";
import {
  cliPath,
  type CliResult,
  get,
  guestsDir,
  orca,
  type ServerProcess,
  startServer,
  until,
  writeProject,
} from "./harness.ts";

const planted = `pl4nted-${crypto.randomUUID()}`;
const rotated = `r0tated-${crypto.randomUUID()}`;

/** `orca secrets set NAME` with `input` on stdin. */
async function setFromStdin(server: ServerProcess, name: string, input: string): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cliPath, "secrets", "--server", server.apiUrl, "set", name],
    env: { NO_COLOR: "1", ORCA_HOME: server.home },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

const probe = (env: string) =>
  `[[service]]\nname = "probe"\nmodule = "${guestsDir}/sandbox.wasm"\ntriggers = ["http:/probe"]\nenv = { ${env} }\n`;

Deno.test("secrets: set, used in env, rotated, refused when missing or in use; never shown", async (t) => {
  let server = await startServer();
  const outputs: string[] = [];
  const run = async (...args: string[]) => {
    const r = await orca(server, ...args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const api = (path: string, init: RequestInit = {}, token = server.token) =>
    fetch(`${server.apiUrl}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...init.headers },
    });
  try {
    await t.step("the key is made once, private to the server's user", async () => {
      const info = await Deno.stat(`${server.home}/secrets.key`);
      assert.equal(info.mode! & 0o777, 0o600);
    });

    await t.step("a deploy naming a secret nobody set is refused, naming service, field and secret", async () => {
      const dir = await writeProject({ sb: probe('DECLARED = "${secrets.db_password}"') });
      const r = await run("deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /sb\/probe: env\.DECLARED uses secret db_password, which is not set/);
      assert.match(r.stderr, /orca secrets set db_password/);
      assert.match((await run("status")).stdout, /no services/i);
    });

    await t.step("set from stdin; the guest sees the value in its env", async () => {
      const r = await setFromStdin(server, "db_password", `${planted}\n`);
      outputs.push(r.stdout, r.stderr);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "secret db_password set");
      const dir = await writeProject({ sb: probe('DECLARED = "${secrets.db_password}", OTHER = "x"') });
      const d = await run("deploy", dir);
      assert.equal(d.code, 0, d.stderr);
      const { text } = await get(`${server.httpUrl}/probe`);
      // The trailing newline of what was piped in is not part of the value.
      assert.match(text, new RegExp(`env DECLARED: ${planted}\\n`));
    });

    await t.step("a new value restarts the service with it", async () => {
      const r = await run("secrets", "set", "db_password", rotated);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "secret db_password updated; sb/probe restarts with the new value");
      await until(
        "the new value",
        async () => (await get(`${server.httpUrl}/probe`)).text.includes(`env DECLARED: ${rotated}`) || undefined,
      );
    });

    await t.step("ls shows names, times and users, never values", async () => {
      const file = await Deno.makeTempFile();
      await Deno.writeTextFile(file, "-----BEGIN NOT A KEY-----\nfile-value\n");
      assert.equal((await run("secrets", "set", "from_file", "--from-file", file)).code, 0);
      const ls = await run("secrets", "ls");
      assert.match(ls.stdout, /NAME\s+UPDATED\s+USED BY/);
      assert.match(ls.stdout, /db_password\s+\S+Z\s+sb\/probe/);
      assert.match(ls.stdout, /from_file\s+\S+Z\s+-/);
      const json = JSON.parse((await run("secrets", "ls", "--json")).stdout);
      assert.deepEqual(json.map((s: { name: string }) => s.name), ["db_password", "from_file"]);
      assert.deepEqual(Object.keys(json[0]).sort(), ["name", "updatedAt", "usedBy"]);
    });

    await t.step("a secret in use is not removed; an unused one is", async () => {
      const r = await run("secrets", "rm", "db_password");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /secret db_password is used by sb\/probe/);
      const ok = await run("secrets", "rm", "from_file");
      assert.equal(ok.code, 0, ok.stderr);
      assert.match((await run("secrets", "rm", "from_file")).stderr, /no secret from_file/);
    });

    await t.step("hostile input: names, sizes, bytes, references, tokens", async () => {
      const put = (name: string, body: BodyInit, token?: string) =>
        api(`/secrets/${name}`, { method: "PUT", body }, token);
      const bad = await put(encodeURIComponent("../etc"), "v");
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error.message, /is not a secret name/);
      const big = await put("big", new Uint8Array(64 * 1024 + 1));
      assert.equal(big.status, 413);
      await big.body?.cancel();
      const binary = await put("bin", new Uint8Array([0xff, 0xfe, 0x00]));
      assert.equal(binary.status, 400);
      assert.match((await binary.json()).error.message, /not UTF-8/);
      const nul = await put("nul", "a\0b");
      assert.equal(nul.status, 400);
      await nul.body?.cancel();
      const anonymous = await put("x", "v", "wrong-token-0123456789");
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const list = await api("/secrets", {}, "wrong-token-0123456789");
      assert.equal(list.status, 401);
      await list.body?.cancel();
      assert.deepEqual((await (await api("/secrets")).json()).secrets.map((s: { name: string }) => s.name), [
        "db_password",
      ]);
      const dir = await writeProject({ sb: probe('DECLARED = "${secrets.}"') });
      const r = await run("deploy", dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /env\.DECLARED.*has an invalid secret reference "\$\{secrets\.\}"/);
      assert.match(r.stderr, /service\.toml/);
    });

    await t.step("after a restart the service starts with the value (the key and the sealed value kept)", async () => {
      await server.stop();
      server = await startServer(server.home);
      await until(
        "the probe",
        async () => (await get(`${server.httpUrl}/probe`)).text.includes(`env DECLARED: ${rotated}`) || undefined,
      );
    });

    await t.step("no planted value in any output, answer or file of the store", async () => {
      for (
        const args of [["status", "--json"], ["status"], ["history", "--json"], ["events", "ls"], ["logs", "sb/probe"]]
      ) {
        const r = await run(...args);
        outputs.push(r.stdout, r.stderr);
      }
      for (const path of ["/services", "/deploys", "/secrets", "/nodes"]) outputs.push(await (await api(path)).text());
      outputs.push(server.output());
      for (const text of outputs) {
        assert.ok(
          !text.includes(planted) && !text.includes(rotated),
          `a secret value was shown: ${text.slice(0, 300)}`,
        );
      }
      for (const file of ["orca.db", "orca.db-wal"]) {
        const bytes = await Deno.readFile(`${server.home}/${file}`).catch(() => new Uint8Array());
        const text = new TextDecoder("latin1").decode(bytes);
        assert.ok(!text.includes(planted) && !text.includes(rotated), `${file} holds a secret value in the clear`);
        assert.ok(!text.includes("file-value"), `${file} holds a secret value in the clear`);
      }
    });
  } finally {
    await server.stop();
  }
});
