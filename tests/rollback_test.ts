/**
 * Deploy history and rollback end to end: a real server, real Wasm guests, the real CLI. A rollback swaps back with
 * no request failing under load, is itself recorded, and can be rolled back; bad requests get clear errors.
 */

import assert from "node:assert/strict";
import type { HistoryEntry } from "../control/mod.ts";
import { get, guestsDir, orca, startServer, writeProject } from "./harness.ts";

const app = (version: 1 | 2) =>
  `[[service]]\nname = "app"\nmodule = "${guestsDir}/version${version}.wasm"\ntriggers = ["http:/v"]\n` +
  `[[service]]\nname = "other"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/other"]\n`;

Deno.test("orca history lists deploys; orca rollback swaps back with no failed request, and is recorded", async (t) => {
  const server = await startServer();
  const one = await writeProject({ roll: app(1) });
  const two = await writeProject({ roll: app(2) });
  const history = async (...args: string[]) => {
    const r = await orca(server, "history", ...args, "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as HistoryEntry[];
  };
  try {
    assert.equal((await orca(server, "deploy", one)).code, 0);
    assert.equal((await orca(server, "deploy", two)).code, 0);
    assert.equal((await get(`${server.httpUrl}/v`)).text, "version 2\n");

    await t.step("history: each deploy, what it did, the module, who", async () => {
      const rows = await history("app");
      assert.deepEqual(rows.map((r) => [r.deploy, r.change, r.version]), [[2, "updated", 2], [1, "created", 1]]);
      assert.notEqual(rows[0].artifact, rows[1].artifact);
      assert.match(rows[0].artifact ?? "", /^[0-9a-f]{64}$/);
      assert.match(rows[0].origin ?? "", /^orca deploy by \S+@\S+$/);
      assert.equal((await history()).length, 3); // app twice, other once
      const text = await orca(server, "history");
      assert.match(text.stdout, /DEPLOY\s+TIME\s+SERVICE\s+CHANGE\s+VERSION\s+MODULE\/IMAGE\s+BY/);
      assert.match(text.stdout, /roll\/app\s+updated\s+v2\s+[0-9a-f]{12}\s+orca deploy by/);
    });

    await t.step("rollback under load: the previous body, and not one failed request", async () => {
      let running = true;
      const seen = { v1: 0, v2: 0, failures: [] as string[] };
      const load = (async () => {
        while (running) {
          const r = await get(`${server.httpUrl}/v`).catch((err) => ({ status: 0, text: String(err) }));
          if (r.status === 200 && r.text === "version 1\n") seen.v1++;
          else if (r.status === 200 && r.text === "version 2\n") seen.v2++;
          else seen.failures.push(`${r.status} ${r.text.slice(0, 100)}`);
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      const r = await orca(server, "rollback", "app");
      const took = Date.now() - started;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /deploy 3: roll\/app rolled back from v2 to the spec of v1/);
      await new Promise((r) => setTimeout(r, 300));
      running = false;
      await load;
      console.log(
        `  rollback took ${took} ms (CLI included); ${seen.v2} v2 then ${seen.v1} v1 answers, ${seen.failures.length} failed`,
      );
      assert.deepEqual(seen.failures, []);
      assert.ok(seen.v1 > 0 && seen.v2 > 0, JSON.stringify(seen));
      assert.equal((await get(`${server.httpUrl}/v`)).text, "version 1\n");
      assert.equal((await get(`${server.httpUrl}/other`)).text, "version 1\n");
    });

    await t.step(
      "the rollback is recorded, at a new version; rolling back by deploy id goes forward again",
      async () => {
        const [last] = await history("roll/app");
        assert.equal(last.deploy, 3);
        assert.equal(last.version, 3);
        assert.match(last.origin ?? "", /^orca rollback roll\/app to v1 of deploy 1 by \S+$/);
        const r = await orca(server, "rollback", "roll/app", "--to", "2");
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await get(`${server.httpUrl}/v`)).text, "version 2\n");
        // The other service of the project was not touched by either.
        assert.deepEqual((await history("other")).map((h) => h.deploy), [1]);
      },
    );

    await t.step("refused with a clear error: nothing earlier, the same version, bad input", async () => {
      const none = await orca(server, "rollback", "other");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /an earlier version of roll\/other is not kept/);
      const same = await orca(server, "rollback", "app", "--to", "4");
      assert.equal(same.code, 1);
      assert.match(same.stderr, /roll\/app already runs what version 4 \(deploy 4\) ran/);
      const bad = await orca(server, "rollback", "app", "--to", "x");
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--to must be a deploy id/);
      const missing = await orca(server, "rollback", "nope");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no service "nope"/);
      const auth = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
      for (const body of ['{"to": -1}', '{"to": "2"}', '{"by": "\\u0000"}', "[1,2", '{"to": 1e400}']) {
        const res = await fetch(`${server.apiUrl}/api/v1/services/roll/app/rollback`, {
          method: "POST",
          headers: auth,
          body,
        });
        assert.equal(res.status, 400, body);
        assert.match((await res.json()).error.message, /to must be|by must be|JSON/, body);
      }
      const queries: [string, number][] = [["limit=abc", 400], ["limit=0", 400], ["service=nope", 404], [
        "limit=1",
        200,
      ]];
      for (const [query, status] of queries) {
        const res = await fetch(`${server.apiUrl}/api/v1/history?${query}`, { headers: auth });
        assert.equal(res.status, status, query);
        if (status === 200) assert.equal((await res.json()).history.length, 1);
        else await res.body?.cancel();
      }
      const canary = await fetch(`${server.apiUrl}/api/v1/services/roll/app/rollout`, { headers: auth });
      assert.equal(canary.status, 404);
      assert.match((await canary.json()).error.message, /roll\/app has had no canary/);
      const noToken = await fetch(`${server.apiUrl}/api/v1/services/roll/app/rollback`, { method: "POST", body: "{}" });
      assert.equal(noToken.status, 401);
      await noToken.body?.cancel();
      assert.equal((await get(`${server.httpUrl}/v`)).text, "version 2\n");
    });

    await t.step("redeploy: a new version of the same spec, recorded; bad input refused", async () => {
      const before = (await history("app"))[0];
      const done = await orca(server, "redeploy", "app");
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /roll\/app started anew/);
      const after = (await history("app"))[0];
      assert.equal(after.version, before.version! + 1);
      assert.equal(after.artifact, before.artifact);
      assert.match(after.origin ?? "", /^orca redeploy roll\/app by \S+@\S+$/);
      assert.equal((await get(`${server.httpUrl}/v`)).text, "version 2\n");
      const missing = await orca(server, "redeploy", "nope");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no service "nope"/);
      assert.equal((await orca(server, "redeploy")).code, 2);
      const auth = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
      const url = `${server.apiUrl}/api/v1/services/roll/app/redeploy`;
      for (const body of ['{"by": "\\u0000"}', "[1,2"]) {
        const res = await fetch(url, { method: "POST", headers: auth, body });
        assert.equal(res.status, 400, body);
        assert.match((await res.json()).error.message, /by must be|JSON/, body);
      }
      const huge = await fetch(url, { method: "POST", headers: auth, body: `{"by": "${"x".repeat(70_000)}"}` });
      assert.equal(huge.status, 413);
      await huge.body?.cancel();
      const noToken = await fetch(url, { method: "POST", body: "{}" });
      assert.equal(noToken.status, 401);
      await noToken.body?.cancel();
      assert.equal((await history("app"))[0].version, after.version);
    });
  } finally {
    await server.stop();
  }
});
