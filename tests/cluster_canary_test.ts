/**
 * A canary in a cluster of three servers (127.0.0.1-3): the service runs on a follower, its traffic enters through
 * the third server's proxy, and the leader, which sees none of it, judges from what the follower measured. A canary
 * failing half its requests is rolled back there, with errors only from its share.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { get, guestsDir, writeProject } from "./harness.ts";
import type { RolloutStatus } from "../control/mod.ts";

const PORTS = { api: 18280, http: 18281 };

Deno.test("in a cluster, the leader judges a canary from what the servers that run it measured", async () => {
  const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-canary-" })));
  const members: Member[] = [];
  try {
    members.push(await startMember(ips[0], homes[0], [], PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    for (const i of [1, 2]) {
      members.push(await startMember(ips[i], homes[i], ["--join", `${ips[0]}:${PORTS.api}`, "--token", token], PORTS));
    }
    const [leader, holder, entry] = members;
    const project = (module: string) =>
      writeProject({
        can: `[[service]]\nname = "api"\nmodule = "${guestsDir}/${module}.wasm"\ntriggers = ["http:/c"]\n` +
          `[service.placement]\nnode = "${holder.ip}:${PORTS.api}"\n` +
          `[service.rollout]\nstrategy = "canary"\ncanary_percent = 10\nanalysis_secs = 60\nmax_error_rate = 0.02\n`,
      });
    const one = await project("version1");
    await eventually("every server registered", async () => {
      const r = await orcaAt(leader.apiUrl, token, "deploy", one, "--plan", "--json");
      const e = r.code === 0 ? JSON.parse(r.stdout)?.explanations?.["can/api"]?.[0] : undefined;
      // Each server registers itself once it serves; the pinned one is the only one feasible.
      return e && e.scores.length + e.rejected.length === 3 && e.chosen !== undefined;
    });
    const first = await orcaAt(leader.apiUrl, token, "deploy", one);
    assert.equal(first.code, 0, first.stderr);
    await eventually("served through the third server", async () => (await get(`${entry.httpUrl}/c`)).status === 200);

    let running = true;
    const seen = new Map<string, number>();
    const load = (async () => {
      while (running) {
        const r = await get(`${entry.httpUrl}/c`).catch((err) => ({ status: 0, text: String(err) }));
        const key = `${r.status} ${r.text.trim()}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    })();
    const r = await orcaAt(leader.apiUrl, token, "deploy", await project("flaky"));
    running = false;
    await load;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /canary rolled back at/);

    const failed = seen.get("500 flaky: failed") ?? 0;
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    const status = (await call(leader.apiUrl, token, "/services/can/api/rollout")).body as RolloutStatus;
    console.log(
      `  ${total} requests through the third server, ${failed} answered 500; the leader counted ` +
        `${status.canary.requests} canary requests (${status.canary.errors} errors) measured on the follower`,
    );
    assert.deepEqual([...seen.keys()].filter((k) => !/^(200 version 1|200 flaky: ok|500 flaky: failed)$/.test(k)), []);
    assert.ok(failed > 0 && failed <= Math.ceil(total * 0.1) + 1, `${failed} of ${total}`);
    assert.equal(status.state, "rolled_back");
    assert.ok(status.canary.requests >= 20, JSON.stringify(status));
    // The leader's own proxy saw none of it: the figures are the follower's, as it tells them.
    const here = (await call(holder.apiUrl, token, "/services/can/api/rollout?here=1")).body as Record<
      string,
      { requests: number }
    >;
    assert.ok(here["2"].requests >= 20, JSON.stringify(here));
    for (let i = 0; i < 10; i++) assert.equal((await get(`${entry.httpUrl}/c`)).text, "version 1\n");
  } finally {
    for (const m of members) await m.kill();
  }
});
