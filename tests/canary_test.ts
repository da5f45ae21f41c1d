/**
 * Canary rollouts end to end: a real server, real Wasm guests, real load through the proxy. A canary that fails half
 * its requests is rolled back as soon as its requests prove it, with client-visible errors only from its share; a
 * healthy one is promoted when its analysis ends, with no error at all. Both outcomes are events, history and logs.
 */

import assert from "node:assert/strict";
import type { HistoryEntry, RolloutStatus } from "../control/mod.ts";
import { get, guestsDir, orca, type ServerProcess, startServer, until, writeProject } from "./harness.ts";

const service = (module: string, analysisSecs: number, extra = "") =>
  `[[service]]\nname = "api"\nmodule = "${guestsDir}/${module}.wasm"\ntriggers = ["http:/c"]\n${extra}` +
  `[service.rollout]\nstrategy = "canary"\ncanary_percent = 10\nanalysis_secs = ${analysisSecs}\n` +
  `max_error_rate = 0.02\n` +
  `[[service]]\nname = "ops"\nmodule = "${guestsDir}/consumer.wasm"\ntriggers = ["event:orca.rollout.**"]\n`;

/** Sequential GETs of /c until stopped: every answer's status and body, counted. */
function load(server: ServerProcess) {
  let running = true;
  const seen = new Map<string, number>();
  const done = (async () => {
    while (running) {
      const r = await get(`${server.httpUrl}/c`).catch((err) => ({ status: 0, text: String(err) }));
      const key = `${r.status} ${r.text.trim()}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  })();
  return async () => {
    running = false;
    await done;
    return seen;
  };
}

async function rolloutOf(server: ServerProcess, key: string): Promise<RolloutStatus> {
  const r = await orca(server, "rollout", "status", key, "--json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

Deno.test("a canary failing half its requests is rolled back at once; errors only from its share", async () => {
  const server = await startServer();
  try {
    assert.equal((await orca(server, "deploy", await writeProject({ can: service("version1", 60) }))).code, 0);
    const stop = load(server);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const r = await orca(server, "deploy", await writeProject({ can: service("flaky", 60) }));
    const took = Date.now() - started;
    await new Promise((r) => setTimeout(r, 300));
    const seen = await stop();
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /can\/api\s+canary/);
    assert.match(r.stdout, /canary rolled back at/);
    assert.match(r.stdout, /outcome: \d+ of \d+ requests failed \(\d+\.\d%\), over max_error_rate 0.02/);
    assert.match(r.stderr, /a canary was rolled back/);

    const failed = seen.get("500 flaky: failed") ?? 0;
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    const status = await rolloutOf(server, "can/api");
    console.log(
      `  deploy -> rolled back: ${took} ms (CLI included); ${total} requests, ${failed} answered 500; ` +
        `canary ${status.canary.requests} requests, ${status.canary.errors} errors`,
    );
    // Every answer is version 1's or the canary's; the errors came from its share alone, and it went as soon as
    // its first 20 requests could prove it (a few more were in flight).
    assert.deepEqual([...seen.keys()].filter((k) => !/^(200 version 1|200 flaky: ok|500 flaky: failed)$/.test(k)), []);
    assert.ok(failed > 0, JSON.stringify([...seen]));
    assert.ok(failed <= Math.ceil(total * 0.1) + 1, `${failed} of ${total}: more than the canary's 10%`);
    assert.ok(status.canary.requests <= 40, JSON.stringify(status));
    assert.equal(status.state, "rolled_back");
    assert.equal(status.stable.errors, 0);

    // Version 1 serves everything again; the history, the logs and the events say what happened.
    for (let i = 0; i < 20; i++) assert.equal((await get(`${server.httpUrl}/c`)).text, "version 1\n");
    const history = JSON.parse((await orca(server, "history", "can/api", "--json")).stdout) as HistoryEntry[];
    assert.deepEqual(history.slice(0, 2).map((h) => [h.change, h.version]), [["rolled_back", 2], ["canary", 2]]);
    assert.match(history[0].origin ?? "", /^canary v2 of can\/api rolled back: \d+ of \d+ requests failed/);
    assert.match((await orca(server, "logs", "can/api")).stdout, /canary v2 rolled back: /);
    await until("the event", async () => {
      const ops = (await orca(server, "logs", "can/ops")).stdout;
      return /event orca\.rollout\.rolled_back: .*"service":"can\/api".*"version":2/.test(ops) || undefined;
    });
    const text = await orca(server, "rollout", "status", "api");
    assert.match(text.stdout, /can\/api: canary rolled back at .* \(limits: error rate <= 0.02\)/);
    assert.match(text.stdout, /stable\s+v1\s+90%/);
    assert.match(text.stdout, /canary\s+v2\s+10%/);

    // The next version is v3, never v2 again (v2's workload may still be draining): it starts at once.
    const next = await orca(server, "deploy", "--no-wait", await writeProject({ can: service("version2", 60) }));
    assert.equal(next.code, 0, next.stderr);
    const again = await rolloutOf(server, "can/api");
    assert.deepEqual([again.state, again.canary.version, again.stable.version], ["analysing", 3, 1]);
    for (let i = 0; i < 20; i++) assert.match((await get(`${server.httpUrl}/c`)).text, /^version [12]\n$/);
  } finally {
    await server.stop();
  }
});

Deno.test("a healthy canary is promoted when its analysis ends, with no failed request", async (t) => {
  const server = await startServer();
  try {
    assert.equal((await orca(server, "deploy", await writeProject({ can: service("version1", 3) }))).code, 0);

    await t.step("promoted after its analysis; every answer a 200 meanwhile", async () => {
      const stop = load(server);
      const started = Date.now();
      const r = await orca(server, "deploy", await writeProject({ can: service("version2", 3) }));
      const took = Date.now() - started;
      const seen = await stop();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /canary of can\/api: 10% of requests for 3 s; waiting for its outcome/);
      assert.match(r.stdout, /canary promoted at/);
      assert.match(r.stdout, /outcome: its analysis ended within its limits: 0 of \d+ requests failed/);
      assert.deepEqual([...seen.keys()].filter((k) => !/^200 version [12]$/.test(k)), []);
      const v1 = seen.get("200 version 1") ?? 0, v2 = seen.get("200 version 2") ?? 0;
      console.log(`  deploy -> promoted: ${took} ms; version 1 answered ${v1}, version 2 ${v2}`);
      assert.ok(took >= 3000, `${took} ms`);
      for (let i = 0; i < 10; i++) assert.equal((await get(`${server.httpUrl}/c`)).text, "version 2\n");
      const status = await rolloutOf(server, "can/api");
      assert.equal(status.state, "promoted");
      assert.ok(status.canary.requests > 0 && status.stable.requests > status.canary.requests, JSON.stringify(status));
      const history = JSON.parse((await orca(server, "history", "api", "--json")).stdout) as HistoryEntry[];
      assert.deepEqual(history.slice(0, 2).map((h) => [h.change, h.version]), [["promoted", 2], ["canary", 2]]);
      const listed = await orca(server, "status", "--json");
      assert.equal(JSON.parse(listed.stdout).find((s: { name: string }) => s.name === "api").version, 2);
      await until("the event", async () => {
        const ops = (await orca(server, "logs", "can/ops")).stdout;
        return /event orca\.rollout\.promoted: .*"service":"can\/api".*"version":2/.test(ops) || undefined;
      });
    });

    await t.step("while a canary runs, another change to its service is refused; --no-wait returns", async () => {
      const r = await orca(server, "deploy", "--no-wait", await writeProject({ can: service("version1", 3) }));
      assert.equal(r.code, 0, r.stderr);
      const again = await orca(server, "deploy", await writeProject({ can: service("flaky", 3) }));
      assert.equal(again.code, 1);
      assert.match(again.stderr, /a canary of can\/api \(v3\) is under way until .*\n.*orca rollout status can\/api/);
      const rollback = await orca(server, "rollback", "can/api");
      assert.equal(rollback.code, 1);
      assert.match(rollback.stderr, /a canary of can\/api \(v3\) is under way/);
      await until("the canary's outcome", async () => {
        return (await rolloutOf(server, "can/api")).state === "promoted" || undefined;
      }, 20_000);
    });

    await t.step("bad input: clear errors naming the file and field", async () => {
      const bad = async (rollout: string, pattern: RegExp) => {
        const toml = `[[service]]\nname = "x"\nmodule = "${guestsDir}/version1.wasm"\n[service.rollout]\n${rollout}\n`;
        const r = await orca(server, "deploy", await writeProject({ bad: toml }));
        assert.equal(r.code, 1, rollout);
        assert.match(r.stderr, pattern, rollout);
      };
      const at = String.raw`\(\S+service\.toml:5\)`;
      await bad(
        'strategy = "blue"',
        new RegExp(`\`rollout.strategy\` has an invalid value "blue" ${at}\nhint: use "canary"`),
      );
      await bad("canary_percent = 0", new RegExp(`\`rollout.canary_percent\` must be at least 1, got 0 ${at}`));
      await bad("canary_percent = 100", new RegExp(`\`rollout.canary_percent\` must be at most 99, got 100 ${at}`));
      await bad("max_error_rate = 2", new RegExp(`\`rollout.max_error_rate\` must be at most 1, got 2 ${at}`));
      await bad("analysis_secs = 1.5", new RegExp(`\`rollout.analysis_secs\` must be a whole number, got 1.5 ${at}`));
      await bad("speed = 3", new RegExp(`\`rollout.speed\` is not a known key ${at}`));
      const none = await orca(server, "rollout", "status", "ops");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /can\/ops has had no canary/);
      const usage = await orca(server, "rollout", "go", "api");
      assert.equal(usage.code, 2);
      // A canary cannot change routes.
      const moved = service("version2", 3).replace('triggers = ["http:/c"]', 'triggers = ["http:/elsewhere"]');
      const r = await orca(server, "deploy", await writeProject({ can: moved }));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /a canary keeps the routes of the version it runs beside/);
    });
  } finally {
    await server.stop();
  }
});
