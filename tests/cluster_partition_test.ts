/**
 * A server cut off from the other two (through proxies the test owns, that
 * peers reach each other through): it refuses writes with 503 and serves
 * reads only with `?stale=1`, while the majority goes on; once the link
 * heals it catches up and serves what was deployed meanwhile. A follower that
 * hangs (SIGSTOP) does not stall the leader's writes.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, startMember } from "./cluster_harness.ts";
import { cliPath, examplesDir, writeProject } from "./harness.ts";
import { PeerProxy } from "./peer_proxy.ts";

// Ports of their own: tests/cluster_test.ts may run at the same time on the same addresses.
const PORTS = { api: 17980, http: 17981 };
const PEER_PORT = 17990;

interface NodeRow {
  id: string;
  address: string;
  role: string;
  leader: boolean;
  applied?: number;
  error?: string;
}

async function deployRequest(name: string, route: string): Promise<string> {
  const dir = await writeProject({
    [name]: `[[service]]\nname = "${name}"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
      `triggers = ["${route}"]\n`,
  });
  return dir;
}

Deno.test("a server cut off from the majority refuses writes, reads only stale, and converges after healing", async () => {
  const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
  const proxies = ips.map((ip) => new PeerProxy({ hostname: ip, port: PEER_PORT }, { hostname: ip, port: PORTS.api }));
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-partition-" })));
  const members: Member[] = [];
  const advertise = (ip: string) => ["--advertise", `${ip}:${PEER_PORT}`];
  try {
    members.push(await startMember(ips[0], homes[0], advertise(ips[0]), PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    for (const i of [1, 2]) {
      members.push(
        await startMember(
          ips[i],
          homes[i],
          [...advertise(ips[i]), "--join", `${ips[0]}:${PORTS.api}`, "--token", token],
          PORTS,
        ),
      );
    }
    const nodes = await eventually("three caught-up voters", async () => {
      const r = await call(members[0].apiUrl, token, "/nodes");
      const rows = (r.body as { nodes: NodeRow[] }).nodes;
      return rows.length === 3 && rows.every((n) => n.role === "voter" && !n.error) ? rows : undefined;
    });
    const leaderIp = nodes.find((n) => n.leader)!.address.split(":")[0];
    const cut = members.find((m) => m.ip !== leaderIp)!;
    const cutId = nodes.find((n) => n.address.startsWith(`${cut.ip}:`))!.id;
    const majority = members.filter((m) => m !== cut);

    // Cut `cut` off both ways: nothing reaches it, and what it sends is refused.
    proxies[ips.indexOf(cut.ip)].isolate("*");
    for (const p of proxies) p.isolate(cutId);

    // The majority goes on taking writes.
    const during = await deployRequest("during", "http:/during/:name");
    const deployed = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", cliPath, "deploy", "--server", majority[0].apiUrl, "--token", token, during],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(deployed.code, 0, new TextDecoder().decode(deployed.stderr));

    // The server cut off knows no leader once its election timeout passes: writes 503 at once, reads need ?stale=1.
    const write = await eventually("the cut-off server refusing a write", async () => {
      const r = await call(cut.apiUrl, token, "/services/x/y", { method: "DELETE" });
      return r.status === 503 ? r : undefined;
    });
    assert.equal(write.headers.get("retry-after"), "1");
    const started = performance.now();
    const read = await call(cut.apiUrl, token, "/services");
    assert.equal(read.status, 503, JSON.stringify(read.body));
    assert.ok(performance.now() - started < 12_000, "a refused read does not hang past its timeout");
    const stale = await call(cut.apiUrl, token, "/services?stale=1");
    assert.equal(stale.status, 200);
    const staleNames = (stale.body as { services: { name: string }[] }).services.map((s) => s.name);
    assert.ok(!staleNames.includes("during"), "the cut-off server has not seen the deploy made meanwhile");

    // Healed: it catches up and serves what was deployed while it was cut off.
    for (const p of proxies) p.heal();
    await eventually("the healed server serving /during", async () => {
      const res = await fetch(`${cut.httpUrl}/during/back`, { signal: AbortSignal.timeout(5_000) });
      return res.status === 200 && /back, from C/.test(await res.text());
    }, 30_000);
    const after = await call(cut.apiUrl, token, "/services");
    assert.equal(after.status, 200);
    assert.deepEqual((after.body as { services: { name: string }[] }).services.map((s) => s.name), ["during"]);

    // A follower that hangs (SIGSTOP) does not stall the leader: writes go on with the other follower.
    const rows = ((await call(members[0].apiUrl, token, "/nodes")).body as { nodes: NodeRow[] }).nodes;
    const leaderNow = rows.find((n) => n.leader)!.address.split(":")[0];
    const lead = members.find((m) => m.ip === leaderNow)!;
    const slow = members.find((m) => m !== lead)!;
    slow.pause();
    try {
      for (let i = 0; i < 50; i++) {
        const r = await call(lead.apiUrl, token, "/queues/steady", { method: "POST", body: `m${i}` });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
    } finally {
      slow.resume();
    }
    await eventually("the slow follower caught up", async () => {
      const r = await call(slow.apiUrl, token, "/queues");
      const steady = (r.body as { topics: { topic: string; retained: number }[] }).topics.find((t) =>
        t.topic === "steady"
      );
      return steady?.retained === 50;
    }, 30_000);
  } finally {
    for (const m of members) await m.kill("SIGKILL");
    for (const p of proxies) await p.close();
  }
});
