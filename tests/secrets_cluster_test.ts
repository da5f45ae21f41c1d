/**
 * Secrets in a cluster: a server on 127.0.0.1 (runs no workloads), a second server joining on 127.0.0.3 and a worker
 * on 127.0.0.2, each its own ORCA_HOME and process group. Both joiners get the cluster's key; a secret set through the
 * follower is sealed and committed once; the worker opens it to start the service placed on it, and a new value
 * reaches it; no node keeps the value in the clear.
 */

import assert from "node:assert/strict";
import { eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { examplesDir, launchServer, writeProject } from "./harness.ts";

const PORTS = { api: 18380, http: 18381 };

Deno.test("secrets reach every node of a cluster sealed; the worker running the service opens them", async () => {
  const homes = await Promise.all([1, 2, 3].map(() => Deno.makeTempDir({ prefix: "orca-secrets-" })));
  const members: Member[] = [];
  let worker: Awaited<ReturnType<typeof launchServer>> | undefined;
  const planted = `pl4nted-${crypto.randomUUID()}`;
  const rotated = `r0tated-${crypto.randomUUID()}`;
  try {
    members.push(await startMember("127.0.0.1", homes[0], ["--no-workloads"], PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    const join = ["--join", `127.0.0.1:${PORTS.api}`, "--token", token, "--no-workloads"];
    members.push(await startMember("127.0.0.3", homes[2], join, PORTS));
    worker = await launchServer([
      ...["join", `127.0.0.1:${PORTS.api}`, "--token", token, "--listen", "127.0.0.2"],
      ...["--api-port", String(PORTS.api), "--http-port", String(PORTS.http), "--home", homes[1], "--name", "w2"],
      ...["--workers", "1", "--pool-size", "1"],
    ], { group: true, timeoutMs: 60_000 });
    await eventually("the worker registered", async () => {
      const r = await orcaAt(members[0].apiUrl, token, "nodes", "--json");
      return r.code === 0 && (JSON.parse(r.stdout) as { role: string; error?: string }[])
        .some((n) => n.role === "worker" && !n.error);
    }, 60_000);

    // The key: one per cluster, private on every node.
    const keys = await Promise.all(homes.map(async (h) => {
      const info = await Deno.stat(`${h}/secrets.key`);
      assert.equal(info.mode! & 0o777, 0o600, `${h}/secrets.key`);
      return (await Deno.readTextFile(`${h}/secrets.key`)).trim();
    }));
    assert.equal(new Set(keys).size, 1, "every node holds the cluster's key");

    // Set through the follower: it goes to the leader, which seals it.
    const follower = members[1].apiUrl;
    const set = await orcaAt(follower, token, "secrets", "set", "greeting", planted);
    assert.equal(set.code, 0, set.stderr);
    const dir = await writeProject({
      web: `[[service]]\nname = "hello"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/hello"]\nenv = { GREETING = "\${secrets.greeting}" }\n`,
    });
    const deployed = await orcaAt(follower, token, "deploy", dir);
    assert.equal(deployed.code, 0, deployed.stderr);
    const greeting = async (url: string) => {
      const res = await fetch(`${url}/hello`, { signal: AbortSignal.timeout(5000) });
      return res.status === 200 ? /greeting=(.*)/.exec(await res.text())?.[1] : (await res.body?.cancel(), undefined);
    };
    const workerHttp = `http://127.0.0.2:${PORTS.http}`;
    const first = await eventually("the worker serves it", () => greeting(workerHttp), 60_000).catch((err) => {
      console.log("worker:", worker!.output(), "\nserver:", members[0].output());
      throw err;
    });
    assert.equal(first, planted);
    // The servers run nothing: they forward to the worker, which put the value in.
    assert.equal(await greeting(members[0].httpUrl), planted);

    const rotate = await orcaAt(members[0].apiUrl, token, "secrets", "set", "greeting", rotated);
    assert.equal(rotate.code, 0, rotate.stderr);
    assert.match(rotate.stdout, /web\/hello restarts with the new value/);
    await eventually("the new value on the worker", async () => (await greeting(workerHttp)) === rotated, 60_000);

    for (const home of homes) {
      for (const file of ["orca.db", "orca.db-wal"]) {
        const bytes = await Deno.readFile(`${home}/${file}`).catch(() => new Uint8Array());
        const text = new TextDecoder("latin1").decode(bytes);
        assert.ok(!text.includes(planted) && !text.includes(rotated), `${home}/${file} holds a value in the clear`);
      }
    }
    const outputs = [...members.map((m) => m.output()), worker.output()];
    for (const out of outputs) assert.ok(!out.includes(planted) && !out.includes(rotated), "a value in a log");
  } finally {
    await worker?.end("SIGKILL");
    for (const m of members) await m.kill();
  }
});
