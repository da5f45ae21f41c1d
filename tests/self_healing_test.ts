/**
 * Self-healing on a real Docker engine and real Wasm: the watchdog (a one-second cycle here) restarts a killed
 * container with no request lost, liveness restarts a replica (a container, and a Wasm service), readiness takes a
 * replica out of the routes and puts it back (counted at the backends), and a container that keeps exiting is a
 * crash loop with backoff. Orca's events show each action.
 */

import assert from "node:assert/strict";
import { Engine } from "../runtime/mod.ts";
import type { ServiceStatus } from "../control/mod.ts";
import {
  get,
  guestsDir,
  orca,
  removeContainers,
  type ServerProcess,
  startServer,
  until,
  writeProject,
} from "./harness.ts";

const engine = new Engine();
const ready = await engine.ping() &&
  await engine.request("GET", "/images/orca-examples%2Fbusybox:1/json").then(() => true, () => false);
if (!ready) console.error("self_healing_test: SKIPPED: no Docker engine or images (scripts/docker_engine.sh)");

const unique = () => `h${crypto.randomUUID().slice(0, 6)}`;

async function docker(...args: string[]): Promise<string> {
  const r = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${text}`);
  return text;
}

async function statusOf(server: ServerProcess, key: string): Promise<ServiceStatus> {
  const r = await orca(server, "status", "--json");
  assert.equal(r.code, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as ServiceStatus[]).find((s) => `${s.project}/${s.name}` === key);
  assert.ok(s, `${key} in ${r.stdout}`);
  return s;
}

async function logText(server: ServerProcess, service: string): Promise<string> {
  return (await orca(server, "logs", service, "--tail", "500")).stdout;
}

/** A subscriber to Orca's own events about instances and routes: its log lists them. */
const events = `[[service]]\nname = "ops"\nmodule = "${guestsDir}/consumer.wasm"\n` +
  `triggers = ["event:orca.instance.**", "event:orca.route.**"]\n`;

/** busybox httpd; /id answers the container's host name (which replica), /ready and /healthz exist at the start. */
const web = (replicas: number) =>
  `[[service]]\nname = "web"\nimage = "orca-examples/busybox:1"\nport = 8080\nreplicas = ${replicas}\n` +
  `triggers = ["http:/*"]\n` +
  `command = ["/bin/sh", "-c", "echo started; /bin/busybox hostname > /www/id; echo ok > /www/ready; echo ok > /www/healthz; ` +
  `exec httpd -f -p 8080 -h /www"]\n` +
  `[service.readiness]\npath = "/ready"\ninterval_secs = 1\nfailure_threshold = 2\n` +
  `[service.liveness]\npath = "/healthz"\ninterval_secs = 1\nfailure_threshold = 2\n`;

Deno.test({
  name: "containers heal: a killed replica is restarted at once with no request lost; liveness and readiness act",
  ignore: !ready,
  async fn(t) {
    // The default 30 s cycle: the engine's events tell the watchdog of a death as it happens.
    const server = await startServer();
    const project = unique();
    const dir = await writeProject({ [project]: web(2) + events });
    const ids = async (n: number) => {
      const seen: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await get(`${server.httpUrl}/id`);
        assert.equal(r.status, 200, r.text);
        seen.push(r.text.trim());
      }
      return seen;
    };
    const idOf = async (replica: number) =>
      (await docker("exec", `${project}-web-${replica}`, "/bin/cat", "/www/id")).trim();
    try {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      const [one, two] = [await idOf(1), await idOf(2)];
      assert.deepEqual(new Set(await ids(4)), new Set([one, two]));

      await t.step("docker kill: restarted at once, and no request failed meanwhile", async () => {
        let failed = 0, served = 0, running = true;
        const load = (async () => {
          while (running) {
            const r = await get(`${server.httpUrl}/id`);
            if (r.status === 200) served++;
            else failed++;
          }
        })();
        const killed = Date.now();
        await docker("kill", `${project}-web-1`);
        await until("replica 1 restarted", async () => /"replica":1/.test(await logText(server, "ops")) || undefined);
        const back = await until("replica 1 answers again", async () => (await ids(4)).includes(one) || undefined);
        const recovered = Date.now() - killed;
        running = false;
        await load;
        console.log(`  killed -> serving again: ${recovered} ms; ${served} requests served, ${failed} failed`);
        assert.ok(back);
        assert.equal(failed, 0);
        assert.ok(recovered < 10_000, `${recovered} ms: the watchdog waited for its cycle`);
        const ops = await logText(server, "ops");
        assert.match(ops, /event orca\.route\.removed: .*"replica":1/);
        assert.match(ops, /event orca\.instance\.restarted: .*"replica":1.*"exitCode":137/);
        assert.match(await logText(server, `${project}/web`), /watchdog: replica 1 restarted/);
      });

      await t.step("readiness failing: no traffic while it fails, traffic again once it passes", async () => {
        await docker("exec", `${project}-web-2`, "/bin/busybox", "rm", "/www/ready");
        await until("replica 2 out of the routes", async () => !(await ids(6)).includes(two) || undefined);
        assert.ok(!(await ids(20)).includes(two), "replica 2 got a request while not ready");
        await docker("exec", `${project}-web-2`, "/bin/sh", "-c", "echo ok > /www/ready");
        await until("replica 2 back in the routes", async () => (await ids(6)).includes(two) || undefined);
      });

      await t.step("liveness failing: the replica is restarted after the threshold", async () => {
        await docker("exec", `${project}-web-1`, "/bin/busybox", "rm", "/www/healthz");
        await until("replica 1 restarted for liveness", async () => {
          const r = (await statusOf(server, `${project}/web`)).replicas?.find((r) => r.replica === 1);
          return (r?.last?.reason.startsWith("liveness: GET /healthz answered 404") && r.state === "running") ||
            undefined;
        });
        // The restart ran its command again: the file is back, and it answers.
        assert.match(await docker("exec", `${project}-web-1`, "/bin/cat", "/www/healthz"), /ok/);
        await until("replica 1 answers again", async () => (await ids(6)).includes(one) || undefined);
      });
    } finally {
      await server.stop();
      await removeContainers(server.home);
    }
  },
});

Deno.test({
  name: "a container that keeps exiting: restarted with growing backoff, then a crash loop in orca status",
  ignore: !ready,
  async fn() {
    const server = await startServer(undefined, {}, ["--watchdog-secs", "1"]);
    const project = unique();
    const crash = `[[service]]\nname = "crash"\nimage = "orca-examples/busybox:1"\n` +
      `command = ["/bin/sh", "-c", "echo boom; sleep 1; exit 3"]\n`;
    const dir = await writeProject({ [project]: crash });
    try {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      const looping = await until("crash loop", async () => {
        const s = await statusOf(server, `${project}/crash`);
        return s.state === "crashloop" ? s : undefined;
      }, 90_000);
      assert.match(looping.message ?? "", /replica 1 restarted 6 times in 10 minutes, last exit code 3/);
      const r = looping.replicas![0];
      assert.equal(r.last?.exitCode, 3);
      assert.ok(r.last?.lines.includes("boom"), JSON.stringify(r.last));
      // Six restarts: the seventh waits 32 s (1, 2, 4, 8, 16, 32).
      assert.ok(r.nextRestartAt! - r.last!.at >= 30_000, JSON.stringify(r));
      const text = await orca(server, "status");
      assert.match(text.stdout, /crashloop/);
      assert.match(text.stdout, /replica 1: crashloop, 6 restart\(s\) in 10 min, last exit code 3, next restart in/);
      assert.match(text.stdout, /\| boom/);
    } finally {
      await server.stop();
      await removeContainers(server.home);
    }
  },
});

Deno.test("a Wasm service whose liveness fails is reloaded; failing readiness takes it out of the routes", async () => {
  const server = await startServer(undefined, {}, ["--watchdog-secs", "1"]);
  const reuse = `${guestsDir}/reuse.wasm`;
  const dir = await writeProject({
    w: `[[service]]\nname = "live"\nmodule = "${reuse}"\ntriggers = ["http:/live/*"]\n` +
      `[service.wasm]\ninstance = "reuse"\n` +
      `[service.liveness]\npath = "/live/healthz?upto=3"\ninterval_secs = 1\nfailure_threshold = 2\n` +
      `[[service]]\nname = "ready"\nmodule = "${reuse}"\ntriggers = ["http:/ready/*"]\n` +
      `[service.wasm]\ninstance = "reuse"\n` +
      `[service.readiness]\npath = "/ready/healthz?upto=3"\ninterval_secs = 1\nfailure_threshold = 2\n` +
      events,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    // Each probe is a request to the instance: after 3 it answers 500, twice in a row, and the watchdog reloads it.
    await until(
      "live reloaded",
      async () => /watchdog: replica 1 restarted/.test(await logText(server, "w/live")) || undefined,
    );
    const logs = await logText(server, "w/live");
    assert.match(logs, /liveness: GET \/live\/healthz\?upto=3 answered 500 \(2 times in a row\)/);
    assert.match(logs, /restarted by the watchdog/);
    // A fresh instance: its count started over.
    const r = await get(`${server.httpUrl}/live/x`);
    assert.equal(r.status, 200);
    assert.ok(Number(/count=(\d+)/.exec(r.text)?.[1]) <= 4, r.text);
    await until(
      "restart event",
      async () => /orca\.instance\.restarted: .*"w\/live"/.test(await logText(server, "ops")) || undefined,
    );

    await until(
      "ready out of the routes",
      async () => (await get(`${server.httpUrl}/ready/x`)).status === 503 || undefined,
    );
    const out = await get(`${server.httpUrl}/ready/x`);
    assert.match(out.text, /no replica is ready/);
    assert.match(
      await logText(server, "w/ready"),
      /taken out of the routes: readiness: GET \/ready\/healthz\?upto=3 answered 500/,
    );
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "a service that failed to start at a restart (its image gone) starts by itself once the image is back",
  ignore: !ready,
  async fn() {
    const image = `orca-test/heal-${unique()}:1`;
    await docker("tag", "orca-examples/busybox:1", image);
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const project = unique();
    const dir = await writeProject({
      [project]: `[[service]]\nname = "back"\nimage = "${image}"\nport = 8080\ntriggers = ["http:/id"]\n` +
        `command = ["/bin/sh", "-c", "echo back > /www/id; exec httpd -f -p 8080 -h /www"]\n`,
    });
    let server = await startServer(home, {}, ["--watchdog-secs", "1"]);
    try {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      assert.equal((await get(`${server.httpUrl}/id`)).text, "back\n");
      // Down, its containers gone with the image: back up, the service cannot start.
      await server.stop();
      await removeContainers(home);
      await docker("rmi", image);
      server = await startServer(home, {}, ["--watchdog-secs", "1"]);
      const failed = await statusOf(server, `${project}/back`);
      assert.equal(failed.state, "failed");
      assert.match(failed.message ?? "", new RegExp(`image ${image} is not on this node`));
      assert.equal((await get(`${server.httpUrl}/id`)).status, 503);
      // The image is back: the watchdog's next try starts it, nobody redeploys.
      await docker("tag", "orca-examples/busybox:1", image);
      const started = Date.now();
      await until(
        "started again",
        async () => (await get(`${server.httpUrl}/id`)).text === "back\n" || undefined,
        60_000,
      );
      console.log(`  image back -> serving: ${Date.now() - started} ms`);
      assert.equal((await statusOf(server, `${project}/back`)).state, "running");
      assert.match(await logText(server, `${project}/back`), /watchdog: started again \(it had failed to start: /);
    } finally {
      await server.stop();
      await removeContainers(home);
      await docker("rmi", image).catch(() => {});
    }
  },
});
