/**
 * Container services on a real Docker engine (scripts/docker_engine.sh starts
 * one; examples/containers/build_images.sh builds the images). Without an
 * engine these tests are skipped, saying why; CI always has one.
 */

import assert from "node:assert/strict";
import { Engine } from "../runtime/mod.ts";
import { get, getWithHost, guestsDir, orca, removeContainers, startServer, writeProject } from "./harness.ts";

const engine = new Engine();
const engineUp = await engine.ping();
const imagesReady = engineUp &&
  await engine.request("GET", "/images/orca-examples%2Fredis:7/json").then(() => true, () => false);
const ready = engineUp && imagesReady;
if (!ready) {
  console.error(
    `containers_test: SKIPPED: ${
      engineUp
        ? "images missing: run bash examples/containers/build_images.sh"
        : "no Docker engine: run sudo bash scripts/docker_engine.sh"
    }`,
  );
}

const dbToml = await Deno.readTextFile(new URL("../examples/containers/services/db/service.toml", import.meta.url));
const unique = () => `t${crypto.randomUUID().slice(0, 6)}`;

async function docker(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

async function inspect(name: string) {
  const r = await docker("inspect", name);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out)[0];
}

Deno.test({
  name: "the database example: stored and read back through its alias, routed by domain, limits set",
  ignore: !ready,
  async fn(t) {
    const server = await startServer();
    const project = unique();
    const dir = await writeProject({ [project]: dbToml.replaceAll("counter.localhost", `${project}.localhost`) });
    try {
      await t.step("deploy: both containers healthy before the deploy returns", async () => {
        const r = await orca(server, "deploy", dir);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`${project}/redis\\s+created`));
        const status = JSON.parse((await orca(server, "status", "--json")).stdout);
        assert.deepEqual(status.map((s: { name: string; state: string }) => `${s.name} ${s.state}`), [
          "counter running",
          "redis running",
        ]);
      });

      await t.step("through the proxy by domain, the counter stores and reads back via alias db", async () => {
        const a = await getWithHost(server.httpUrl, "/cgi-bin/hits", `${project}.localhost`);
        const b = await getWithHost(server.httpUrl, "/cgi-bin/hits", `${project}.localhost`);
        assert.equal(a.status, 200);
        const n = Number(/hits: (\d+)/.exec(a.text)?.[1]);
        assert.ok(n >= 1, a.text);
        assert.equal(b.text, `hits: ${n + 1}\n`);
      });

      await t.step("names, labels, network aliases, memory and CPU limits", async () => {
        const redis = await inspect(`${project}-redis-1`);
        assert.equal(redis.HostConfig.Memory, 128 * 1024 * 1024);
        assert.equal(redis.HostConfig.NanoCpus, 5e8);
        assert.equal(redis.HostConfig.RestartPolicy.Name, "no"); // the watchdog restarts it
        assert.equal(redis.Config.Labels["orca.managed"], "true");
        assert.equal(redis.Config.Labels["orca.project"], project);
        const aliases = redis.NetworkSettings.Networks[`orca-${project}`].Aliases;
        assert.ok(aliases.includes("db") && aliases.includes("redis"), JSON.stringify(aliases));
      });

      await t.step("exec, logs and stats", async () => {
        const exec = await orca(server, "exec", `${project}/redis`, "--", "/usr/bin/redis-cli", "ping");
        assert.equal(exec.code, 0, exec.stderr);
        assert.equal(exec.stdout.trim(), "PONG");
        const logs = await orca(server, "logs", `${project}/redis`);
        assert.match(logs.stdout, /Ready to accept connections/);
        const stats = JSON.parse((await orca(server, "stats", `${project}/redis`, "--json")).stdout);
        assert.ok(stats.memoryBytes > 0);
        assert.equal(stats.memoryLimitBytes, 128 * 1024 * 1024);
      });

      await t.step("another project cannot reach db, unless both are internal", async () => {
        const other = unique();
        const probe = (internal: boolean) =>
          `[[service]]\nname = "probe"\nimage = "orca-examples/redis:7"\ncommand = ["/bin/sleep", "3600"]\ninternal = ${internal}\n`;
        const otherDir = await writeProject({ [other]: probe(false) });
        assert.equal((await orca(server, "deploy", otherDir)).code, 0);
        const denied = await orca(server, "exec", `${other}/probe`, "--", "/usr/bin/redis-cli", "-h", "db", "ping");
        assert.notEqual(denied.code, 0);
        // Make both internal: the redis service joins orca-internal with its aliases.
        await Deno.writeTextFile(
          `${dir}/services/${project}/service.toml`,
          dbToml.replaceAll("counter.localhost", `${project}.localhost`).replace(
            'aliases = ["db"]',
            'aliases = ["db"]\ninternal = true',
          ),
        );
        await Deno.writeTextFile(`${otherDir}/services/${other}/service.toml`, probe(true));
        assert.equal((await orca(server, "deploy", dir)).code, 0);
        assert.equal((await orca(server, "deploy", otherDir)).code, 0);
        const allowed = await orca(server, "exec", `${other}/probe`, "--", "/usr/bin/redis-cli", "-h", "db", "ping");
        assert.equal(allowed.stdout.trim(), "PONG", allowed.stderr);
        assert.equal((await orca(server, "rm", `${other}/probe`)).code, 0);
      });

      await t.step("rm stops and removes the containers", async () => {
        assert.equal((await orca(server, "rm", `${project}/counter`)).code, 0);
        assert.equal((await getWithHost(server.httpUrl, "/cgi-bin/hits", `${project}.localhost`)).status, 404);
        const until = Date.now() + 20_000;
        while ((await docker("inspect", `${project}-counter-1`)).code === 0 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.notEqual((await docker("inspect", `${project}-counter-1`)).code, 0);
      });
    } finally {
      await server.stop();
      await removeContainers(server.home);
    }
  },
});

Deno.test({
  name: "GPU requests reach the engine: nvidia DeviceRequests, amd devices and groups",
  ignore: !ready,
  async fn() {
    const { ContainerRuntime } = await import("../runtime/mod.ts");
    const { readService } = await import("../config/mod.ts");
    const runtime = new ContainerRuntime(engine, `test-${unique()}`);
    const project = unique();
    const spec = (name: string, vendor: string, count: number) =>
      readService({
        name,
        image: "orca-examples/busybox:1",
        command: ["/bin/sleep", "60"],
        resources: { gpu: { vendor, count } },
      }, {
        file: "test",
      }, project);
    const nvidia = await runtime.create({ id: `${project}/gpu@1`, service: spec("gpu", "nvidia", 2) });
    const amd = await runtime.create({ id: `${project}/rocm@1`, service: spec("rocm", "amd", 1) });
    try {
      const [n] = await runtime.inspect(nvidia);
      assert.deepEqual(n.HostConfig.DeviceRequests, [{
        Driver: "nvidia",
        Count: 2,
        DeviceIDs: null,
        Capabilities: [["gpu"]],
        Options: null,
      }]);
      const [a] = await runtime.inspect(amd);
      const devices = (a.HostConfig.Devices as { PathOnHost: string }[]).map((d) => d.PathOnHost);
      assert.equal(devices[0], "/dev/kfd");
      const groups = (await Deno.readTextFile("/etc/group")).split("\n").filter((l) => /^(video|render):/.test(l)).map((
        l,
      ) => l.split(":")[2]);
      assert.deepEqual([...(a.HostConfig.GroupAdd as string[] ?? [])].sort(), groups.sort());
    } finally {
      await runtime.remove(nvidia);
      await runtime.remove(amd);
    }
  },
});

Deno.test({
  name: "bad input: unknown image, engine not running; other services unaffected",
  ignore: !engineUp,
  async fn(t) {
    const server = await startServer();
    const dead = await startServer(undefined, {}, ["--docker-socket", "/tmp/orca-test-no-engine.sock"]);
    const project = unique();
    try {
      const wasm = await writeProject({
        [project]: `[[service]]\nname = "v"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/v"]\n`,
      });
      assert.equal((await orca(server, "deploy", wasm)).code, 0);

      await t.step("unknown image: named, with how to load it", async () => {
        await Deno.writeTextFile(
          `${wasm}/services/${project}/service.toml`,
          `[[service]]\nname = "v"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/v"]\n` +
            `[[service]]\nname = "ghost"\nimage = "orca-examples/no-such-image:1"\nport = 80\n`,
        );
        const r = await orca(server, "deploy", wasm);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /pulling orca-examples\/no-such-image:1/);
        assert.match(r.stderr, /image orca-examples\/no-such-image:1 is not on the server, and pulling it failed/);
        assert.match(r.stderr, /hint: load it there with `docker load -i image\.tar`/);
        assert.equal((await get(`${server.httpUrl}/v`)).text, "version 1\n");
      });

      await t.step("engine not running: a clear error, Wasm services unaffected", async () => {
        const ok = await writeProject({
          [project]: `[[service]]\nname = "v"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/v"]\n`,
        });
        assert.equal((await orca(dead, "deploy", ok)).code, 0);
        const other = unique();
        const ct = await writeProject({ [other]: `[[service]]\nname = "c"\nimage = "orca-examples/busybox:1"\n` });
        const r = await orca(dead, "deploy", ct);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /no Docker engine answers at \/tmp\/orca-test-no-engine\.sock/);
        assert.match(r.stderr, /hint: start one/);
        assert.equal((await get(`${dead.httpUrl}/v`)).text, "version 1\n");
      });
    } finally {
      await server.stop();
      await dead.stop();
      await removeContainers(server.home);
    }
  },
});

Deno.test({
  name: "container services run cron and queue jobs in one-off containers",
  ignore: !ready,
  async fn() {
    const server = await startServer();
    const project = unique();
    const dir = await writeProject({
      [project]: `[[service]]\nname = "ticker"\nimage = "orca-examples/busybox:1"\n` +
        `command = ["/bin/sh", "-c", "echo tick $ORCA_SCHEDULED_AT; echo msg=$ORCA_MESSAGE"]\n` +
        `triggers = ["cron:*/2 * * * * *", "queue:${project}-jobs"]\n`,
    });
    try {
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        (await docker("ps", "-q", "--filter", `label=orca.project=${project}`)).out.trim(),
        "",
        "no long-running container",
      );
      assert.equal((await orca(server, "queue", "publish", `${project}-jobs`, "hello from the queue")).code, 0);
      const deadline = Date.now() + 20_000;
      // A firing while a slow container start is still running is recorded as
      // skipped (runs never overlap), so wait for the first finished run.
      let runs: { status: string; outputTail: string }[] = [];
      let done: { status: string; outputTail: string } | undefined;
      while (Date.now() < deadline) {
        runs = JSON.parse((await orca(server, "runs", `${project}/ticker`, "--json")).stdout);
        done = runs.find((run) => run.status !== "skipped");
        if (done) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(done?.status, "ok", JSON.stringify(runs));
      assert.match(done.outputTail, /tick \d{4}-\d\d-\d\dT/);
      const queue = await orca(server, "queue", "ls", "--json");
      const topic = JSON.parse(queue.stdout).find((t: { topic: string }) => t.topic === `${project}-jobs`);
      while (
        Date.now() < deadline && JSON.parse((await orca(server, "queue", "ls", "--json")).stdout)
            .find((t: { topic: string }) => t.topic === `${project}-jobs`)?.consumers[0]?.pending > 0
      ) {
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(topic, queue.stdout);
      const after = JSON.parse((await orca(server, "queue", "ls", "--json")).stdout).find((t: { topic: string }) =>
        t.topic === `${project}-jobs`
      );
      assert.equal(after.consumers[0].pending, 0);
      assert.equal(after.consumers[0].dead, 0);
    } finally {
      await server.stop();
      await removeContainers(server.home);
    }
  },
});
