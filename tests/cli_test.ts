/** The `orca` program's help, version and exit codes. */

import assert from "node:assert/strict";
import { orca } from "./harness.ts";

Deno.test("orca --help lists every command; each command has its own help", async () => {
  const help = await orca(undefined, "--help");
  assert.equal(help.code, 0);
  for (const cmd of ["server", "deploy", "status", "logs"]) {
    assert.match(help.stdout, new RegExp(`^  ${cmd}\\s+\\S`, "m"));
  }
  const deploy = await orca(undefined, "deploy", "--help");
  assert.equal(deploy.code, 0);
  assert.match(deploy.stdout, /usage: orca deploy \[DIR\]/);
  assert.match(deploy.stdout, /--server URL/);
  const server = await orca(undefined, "server", "--help");
  assert.match(server.stdout, /--api-port N\s+REST API port \(default 6880\)/);
});

Deno.test("no command is a usage error (exit 2) that prints the help", async () => {
  const r = await orca(undefined);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /usage: orca <command>/);
});

Deno.test("orca --version", async () => {
  const r = await orca(undefined, "--version");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^orca \d+\.\d+\.\d+$/m);
});

Deno.test("missing token file: a clear error that says where to find it", async () => {
  const home = await Deno.makeTempDir();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, "status"],
    env: { ORCA_HOME: home, NO_COLOR: "1" },
    stderr: "piped",
    stdout: "piped",
  }).output();
  assert.equal(r.code, 2);
  const err = new TextDecoder().decode(r.stderr);
  assert.match(err, /no API token: .*cluster\.token does not exist/);
  assert.match(err, /hint: pass --token/);
});

Deno.test("a port already taken: a clear error, exit 1", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  const home = await Deno.makeTempDir();
  try {
    const r = await orca(
      undefined,
      "server",
      "--listen",
      "127.0.0.1",
      "--api-port",
      "0",
      "--http-port",
      port,
      "--home",
      home,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error: a port is already in use \\(api 0, http ${port}\\)`));
    assert.match(r.stderr, /hint: stop what uses it, or pick others/);
  } finally {
    taken.close();
  }
});

Deno.test("server flags of limits and clusters: malformed values are usage errors that name the flag", async () => {
  const home = await Deno.makeTempDir();
  const server = (...flags: string[]) => orca(undefined, "server", "--home", home, "--api-port", "0", ...flags);
  const cases: [string[], RegExp][] = [
    [["--max-message-bytes", "abc"], /--max-message-bytes must be a number of bytes from 1024/],
    [["--max-deploy-bytes", "12"], /--max-deploy-bytes must be a number of bytes from 1024/],
    [["--max-module-bytes", "99999999999"], /--max-module-bytes must be a number of bytes/],
    [["--join", "nowhere"], /--join must be host:port/],
    [["--join", "127.0.0.1:0"], /--join must be host:port/],
    [["--advertise", "a/b:1"], /--advertise must be host:port/],
    [["--join", "127.0.0.1:1", "--token", "short"], /--token must be 16-256 letters/],
    [["--labels", "zone"], /--labels: "zone" is not key=value/],
    [["--labels", "zone=a b"], /--labels: label zone's value "a b"/],
    [["--labels", `k=${"v".repeat(64)}`], /--labels: .*at most 63/],
    [["--node-timeout-secs", "0"], /--node-timeout-secs must be a whole number of seconds from 1/],
    [["--node-timeout-secs", "1.5"], /--node-timeout-secs must be a whole number/],
    [["--node-timeout-secs", "9999999"], /--node-timeout-secs must be a whole number/],
    [["--watchdog-secs", "0"], /--watchdog-secs must be a whole number of seconds from 1 to 86400; got 0/],
    [["--watchdog-secs=-5"], /--watchdog-secs must be a whole number of seconds/],
    [["--watchdog-secs", "1e3"], /--watchdog-secs must be a whole number of seconds/],
  ];
  for (const [flags, message] of cases) {
    const r = await server(...flags);
    assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // A data dir that belongs to another cluster (another token) is not taken over.
  await Deno.writeTextFile(`${home}/cluster.token`, "a".repeat(64));
  const other = await server("--join", "127.0.0.1:1", "--token", "b".repeat(64));
  assert.equal(other.code, 2);
  assert.match(other.stderr, /belongs to another cluster/);
});
