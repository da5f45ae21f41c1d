/**
 * The scheduler's placements across three servers (127.0.0.1-3, a node
 * timeout of 2 s): a server killed with -9 loses its replicas to the others
 * within the node timeout, while every proxy keeps answering; restarted, it
 * runs none of what moved, and no replica runs twice.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { examplesDir, writeProject } from "./harness.ts";

const PORTS = { api: 18080, http: 18081 };
const TIMEOUT_SECS = 2;

interface ServiceRow {
  name: string;
  state: string;
  placements?: { replica: number; node: string; state: string }[];
}

interface NodeRow {
  id: string;
  address: string;
  leader: boolean;
}

async function services(member: Member, token: string): Promise<ServiceRow[]> {
  const r = await call(member.apiUrl, token, "/services");
  return (r.body as { services: ServiceRow[] }).services;
}

Deno.test("a server killed -9 loses its replicas to the others within the node timeout; back, it runs none twice", async () => {
  const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-placement-" })));
  const members: Member[] = [];
  const flags = (zone: string) => ["--labels", `zone=${zone}`, "--node-timeout-secs", String(TIMEOUT_SECS)];
  try {
    members.push(await startMember(ips[0], homes[0], flags("z1"), PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    for (const i of [1, 2]) {
      const join = ["--join", `${ips[0]}:${PORTS.api}`, "--token", token];
      members.push(await startMember(ips[i], homes[i], [...join, ...flags(`z${i + 1}`)], PORTS));
    }
    const dir = await writeProject({
      solo: `[[service]]\nname = "solo"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/solo/:name"]\n`,
    });
    await eventually("every server registered", async () => {
      const r = await orcaAt(members[1].apiUrl, token, "deploy", dir, "--plan", "--json");
      const plan = r.code === 0 ? JSON.parse(r.stdout) : undefined;
      // Each server registers itself once it serves; a deploy before that places only on those registered.
      return plan?.explanations?.["solo/solo"]?.[0]?.scores?.length === 3;
    });
    const deployed = await orcaAt(members[1].apiUrl, token, "deploy", dir);
    assert.equal(deployed.code, 0, deployed.stderr);
    // The server that runs it says so through the log: every server sees it ready.
    const before = await eventually("solo ready", async () => {
      const row = (await services(members[0], token)).find((s) => s.name === "solo");
      return row?.placements?.length === 1 && row.placements[0].state === "ready" ? row : undefined;
    });
    // A report is the cluster's own: without the token 401; malformed, 400 naming the field; an unknown node, 404.
    const post = (id: string, body: unknown, auth = token) =>
      call(members[2].apiUrl, auth, `/cluster/nodes/${id}/replicas`, { method: "POST", body: JSON.stringify(body) });
    assert.equal((await post("x", { states: [], gone: [] }, "not-the-token")).status, 401);
    const malformed = await post(before.placements![0].node, { states: [{ service: "p/s", version: -1 }], gone: [] });
    assert.equal(malformed.status, 400);
    assert.match(JSON.stringify(malformed.body), /states\[0\]\.version/);
    assert.equal((await post("no-such-node", { states: [], gone: [] })).status, 404);
    const nodes = JSON.parse((await orcaAt(members[0].apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
    const holder = nodes.find((n) => n.id === before.placements![0].node)!;
    const victim = members.find((m) => holder.address.startsWith(`${m.ip}:`))!;
    const survivors = members.filter((m) => m !== victim);
    for (const m of members) {
      const text = await eventually(`${m.ip} serves /solo`, async () => {
        const res = await fetch(`${m.httpUrl}/solo/x`);
        return res.status === 200 ? await res.text() : undefined;
      });
      assert.match(text, /, x, from C/);
    }

    // Its logs and stats are answered through any server: one without a replica asks the one that runs it.
    const other = members.find((m) => m !== victim)!;
    const stats = await orcaAt(other.apiUrl, token, "stats", "solo", "--json");
    assert.equal(stats.code, 0, stats.stderr);
    assert.ok(JSON.parse(stats.stdout).requests >= members.length, stats.stdout);
    const logs = await orcaAt(other.apiUrl, token, "logs", "solo");
    assert.equal(logs.code, 0, logs.stderr);
    assert.notEqual(logs.stdout.trim(), "", "the replica's log lines, from the server that runs it");

    // A steady load on the survivors across the kill: what fails is the time the replica is lost.
    let stop = false;
    let failed = 0;
    let answered = 0;
    let lastFailure = 0;
    const load = survivors.map(async (m) => {
      while (!stop) {
        const res = await fetch(`${m.httpUrl}/solo/load`, { signal: AbortSignal.timeout(5_000) }).catch(() =>
          undefined
        );
        await res?.body?.cancel();
        if (res?.status === 200) answered++;
        else {
          failed++;
          lastFailure = performance.now();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await victim.kill("SIGKILL");
    const killedAt = performance.now();
    const moved = await eventually("solo placed on a survivor", async () => {
      const row = (await services(survivors[0], token)).find((s) => s.name === "solo");
      const p = row?.placements;
      return p?.length === 1 && p[0].node !== holder.id && p[0].state === "ready" ? row : undefined;
    }, 30_000);
    for (const m of survivors) {
      let last = "";
      await eventually(`${m.ip} serves /solo again`, async () => {
        const res = await fetch(`${m.httpUrl}/solo/y`);
        last = `${res.status} ${await res.text()}`;
        return res.status === 200;
      }).catch((err) => {
        throw new Error(`${err.message} (last: ${last}); ${m.output().slice(-3000)}`);
      });
    }
    const servingAfterMs = performance.now() - killedAt;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(load);
    const outageMs = lastFailure === 0 ? 0 : lastFailure - killedAt;
    console.log(
      `node lost: solo served again ${Math.round(servingAfterMs)} ms after kill -9 (node timeout ${TIMEOUT_SECS} s); ` +
        `${failed} failed and ${answered} answered requests meanwhile, the last failure ${Math.round(outageMs)} ms in`,
    );
    assert.ok(servingAfterMs < (TIMEOUT_SECS + 5) * 1000, `served again after ${servingAfterMs} ms`);
    assert.ok(answered > 0);

    // Back: it catches up, runs no replica of solo (it moved), and forwards to the one that does.
    const back = await startMember(victim.ip, victim.home, flags("z9"), PORTS);
    members[members.indexOf(victim)] = back;
    const text = await eventually(`${back.ip} serves /solo`, async () => {
      const res = await fetch(`${back.httpUrl}/solo/z`);
      return res.status === 200 ? await res.text() : undefined;
    }, 30_000);
    assert.match(text, /, z, from C/);
    const mine = (await services(back, token)).find((s) => s.name === "solo")!;
    assert.deepEqual(mine.placements, moved.placements, "the replica stays where it moved; none runs twice");
    assert.equal(mine.state, "remote", "the restarted server runs no replica of solo");
  } finally {
    for (const m of members) await m.kill("SIGKILL").catch(() => {});
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
});

Deno.test("a drained server's replicas move one at a time with no failed request; undrained, it takes new ones", async () => {
  const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-drain-" })));
  const members: Member[] = [];
  try {
    members.push(await startMember(ips[0], homes[0], ["--labels", "zone=z1"], PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    for (const i of [1, 2]) {
      const join = ["--join", `${ips[0]}:${PORTS.api}`, "--token", token, "--labels", `zone=z${i + 1}`];
      members.push(await startMember(ips[i], homes[i], join, PORTS));
    }
    const dir = await writeProject({
      web: `[[service]]\nname = "web"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/web/:name"]\nreplicas = 2\n`,
      api: `[[service]]\nname = "api"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/api/:name"]\nreplicas = 2\n`,
    });
    await eventually("every server registered", async () => {
      const r = await orcaAt(members[0].apiUrl, token, "deploy", dir, "--plan", "--json");
      return r.code === 0 && JSON.parse(r.stdout).explanations["web/web"]?.[0]?.scores?.length === 3;
    });
    const deployed = await orcaAt(members[0].apiUrl, token, "deploy", dir);
    assert.equal(deployed.code, 0, deployed.stderr);
    const allReady = (rows: ServiceRow[]) =>
      rows.filter((s) => s.placements).every((s) =>
        s.placements!.length === 2 && s.placements!.every((p) => p.state === "ready")
      );
    const rows = await eventually("every replica ready", async () => {
      const r = await services(members[0], token);
      return allReady(r) ? r : undefined;
    });
    const victim = rows.find((s) => s.name === "web")!.placements![0].node;
    const moving = rows.flatMap((s) => s.placements ?? []).filter((p) => p.node === victim).length;

    // The refusals first: no token, no such node, no id.
    const noToken = await call(members[1].apiUrl, "not-the-token", `/cluster/nodes/${victim}/drain`, {
      method: "POST",
    });
    assert.equal(noToken.status, 401);
    const unknown = await orcaAt(members[1].apiUrl, token, "nodes", "drain", "no-such-node");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no node no-such-node/);
    assert.equal((await orcaAt(members[1].apiUrl, token, "nodes", "drain")).code, 2);

    let stop = false;
    const failures: string[] = [];
    let answered = 0;
    const load = members.flatMap((m) =>
      ["web", "api"].map(async (svc) => {
        while (!stop) {
          const res = await fetch(`${m.httpUrl}/${svc}/d`, { signal: AbortSignal.timeout(5_000) }).catch((e) => e);
          if (res instanceof Response && res.status === 200) answered++;
          else failures.push(`${m.ip} /${svc}: ${res instanceof Response ? `${res.status} ${await res.text()}` : res}`);
          if (res instanceof Response) await res.body?.cancel();
        }
      })
    );
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    const drained = await orcaAt(members[2].apiUrl, token, "nodes", "drain", victim);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /draining/);
    await eventually("the node drained, every replica ready elsewhere", async () => {
      const nodes = JSON.parse((await orcaAt(members[0].apiUrl, token, "nodes", "--json")).stdout) as (NodeRow & {
        drain: boolean;
        replicas: number;
      })[];
      const node = nodes.find((n) => n.id === victim)!;
      const now = await services(members[0], token);
      return node.drain && node.replicas === 0 && allReady(now) &&
        !now.some((s) => s.placements?.some((p) => p.node === victim));
    }, 60_000);
    const drainMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(load);
    console.log(
      `drain: ${moving} replica(s) moved in ${
        Math.round(drainMs)
      } ms; ${answered} requests answered, ${failures.length} failed`,
    );
    assert.deepEqual(failures, [], "no request failed during the drain");
    const table = await orcaAt(members[0].apiUrl, token, "nodes");
    assert.match(table.stdout, /0 \(drained\)/);

    // Undrained: back in service, it takes new replicas again.
    const undrained = await orcaAt(members[0].apiUrl, token, "nodes", "undrain", victim);
    assert.equal(undrained.code, 0, undrained.stderr);
    const wide = await writeProject({
      wide: `[[service]]\nname = "wide"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/wide"]\nreplicas = 3\n`,
    });
    assert.equal((await orcaAt(members[0].apiUrl, token, "deploy", wide)).code, 0);
    const placed = (await services(members[0], token)).find((s) => s.name === "wide")!;
    assert.ok(placed.placements!.some((p) => p.node === victim), "the undrained node got a replica");
  } finally {
    for (const m of members) await m.kill("SIGKILL").catch(() => {});
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
});
