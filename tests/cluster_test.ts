/**
 * Three servers on 127.0.0.1, .2 and .3 form one cluster (one `orca server`,
 * two `--join`): deploys go through any of them, every server's proxy serves
 * every route, and the cluster takes writes again soon after its leader is
 * killed with -9; the killed server comes back and catches up.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { examplesDir, guestsDir, writeProject } from "./harness.ts";

interface NodeRow {
  id: string;
  address: string;
  role: string;
  leader: boolean;
  commit?: number;
  applied?: number;
  error?: string;
  labels?: Record<string, string>;
  capacity?: { memory: number; cpuMillis: number };
  drain?: boolean;
}

interface PlacedRow {
  name: string;
  placements?: { replica: number; node: string }[];
}

const project = (name: string, route: string, replicas = 1) =>
  writeProject({
    [name]: `[[service]]\nname = "${name}"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
      `triggers = ["${route}"]\nenv = { GREETING = "hi" }\nreplicas = ${replicas}\n`,
  });

async function greet(member: Member, path: string): Promise<string | undefined> {
  const res = await fetch(`${member.httpUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return res.status === 200 ? text : undefined;
}

Deno.test("three servers form a cluster: deploy through a follower, every proxy serves, a leader killed -9 is replaced", async (t) => {
  const homes = await Promise.all([1, 2, 3].map(() => Deno.makeTempDir({ prefix: "orca-cluster-" })));
  const members: Member[] = [];
  try {
    members.push(await startMember("127.0.0.1", homes[0], ["--labels", "zone=z1"]));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    const join = (through: string, zone: string) => ["--join", through, "--token", token, "--labels", `zone=${zone}`];
    members.push(await startMember("127.0.0.2", homes[1], join("127.0.0.1:17880", "z2")));
    // The third joins through a follower: the request is forwarded to the leader.
    members.push(await startMember("127.0.0.3", homes[2], join("127.0.0.2:17880", "z3")));
    const [a, b, c] = members;
    let killed: Member | undefined;

    await t.step("orca nodes: three voters, one leader, every one reachable and caught up", async () => {
      const nodes = await eventually("three caught-up voters", async () => {
        const r = await orcaAt(c.apiUrl, token, "nodes", "--json");
        const rows = JSON.parse(r.stdout) as NodeRow[];
        // Each registered its labels and capacity (a follower's record reaches the registry through the leader).
        const ok = rows.length === 3 && rows.every((n) => n.role === "voter" && !n.error && n.capacity);
        return ok ? rows : undefined;
      });
      assert.equal(nodes.filter((n) => n.leader).length, 1);
      assert.deepEqual(nodes.map((n) => `${n.address} ${n.labels?.zone}`).sort(), [
        "127.0.0.1:17880 z1",
        "127.0.0.2:17880 z2",
        "127.0.0.3:17880 z3",
      ]);
      for (const n of nodes) {
        assert.equal(n.capacity!.cpuMillis, navigator.hardwareConcurrency * 1000);
        assert.equal(n.drain, false);
      }
      assert.deepEqual(nodes.map((n) => n.address).sort(), ["127.0.0.1:17880", "127.0.0.2:17880", "127.0.0.3:17880"]);
      const table = await orcaAt(a.apiUrl, token, "nodes");
      assert.match(table.stdout, /NODE\s+ADDRESS\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+LAG/);
      assert.match(table.stdout, /voter \(leader\)/);
      // Without the token nothing is forwarded to the leader or waits on it: a follower answers 401 itself.
      const follower = members.find((m) => !nodes.find((n) => n.leader)!.address.startsWith(`${m.ip}:`))!;
      // Orca's own events raised on a follower reach the leader, which publishes them.
      const raised = await call(follower.apiUrl, token, "/cluster/events/orca.instance.crashed", {
        method: "POST",
        body: JSON.stringify({ service: "p/s", error: "test" }),
      });
      assert.equal(raised.status, 201, JSON.stringify(raised.body));
      for (const init of [{ method: "POST", body: "x" }, { method: "GET" }]) {
        const r = await call(follower.apiUrl, "not-the-token", "/queues/orders", init);
        assert.equal(r.status, 401, JSON.stringify(r.body));
      }
      // Writes through a follower: a small body is forwarded in one piece, a big one streamed; the leader's answer,
      // a refusal too, comes back as it is.
      const leaderUrl = members.find((m) =>
        m !== follower && nodes.find((n) => n.leader)!.address.startsWith(`${m.ip}:`)
      )!
        .apiUrl;
      for (const size of [1 << 10, 600 << 10]) {
        const bytes = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
        const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) =>
          b.toString(16).padStart(2, "0")).join("");
        const put = await call(follower.apiUrl, token, `/blobs/${hash}`, { method: "PUT", body: bytes });
        assert.equal(put.status, 201, JSON.stringify(put.body));
        const got = await fetch(`${leaderUrl}/api/v1/blobs/${hash}?stale=1`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes);
        const wrong = await call(follower.apiUrl, token, `/blobs/${"0".repeat(64)}`, { method: "PUT", body: bytes });
        assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
      }
    });

    const cronDeployed = performance.now();
    await t.step("a deploy through a follower reaches every server's proxy", async () => {
      const dir = await writeProject({
        // Two replicas, in two of the three zones: the servers without one forward its requests.
        greeter: `[[service]]\nname = "greeter"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
          `triggers = ["http:/greet/:name"]\nreplicas = 2\n`,
        // One replica: two servers forward to it. It prints the headers it was given.
        probe: `[[service]]\nname = "probe"\nmodule = "${guestsDir}/sandbox.wasm"\ntriggers = ["http:/probe"]\n`,
        // A job every second, kept through the failover below: each tick must run at most once cluster-wide.
        // Three replicas: whichever server dies, the leader has another run the next firing.
        ticker: `[[service]]\nname = "tick"\nmodule = "${guestsDir}/tick.wasm"\ntriggers = ["cron:* * * * * *"]\n` +
          `replicas = 3\n`,
      });
      const r = await orcaAt(b.apiUrl, token, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      for (const m of members) {
        const text = await eventually(`${m.ip} serves /greet`, () => greet(m, "/greet/world"));
        assert.match(text, /, world, from C/);
      }
      // Reads are linearizable on any server: the follower that took the deploy lists it at once.
      const status = await call(c.apiUrl, token, "/services");
      assert.equal(status.status, 200);
      const services = (status.body as { services: PlacedRow[] }).services;
      assert.deepEqual(services.map((s) => s.name).sort(), ["greeter", "probe", "tick"]);
      // The scheduler placed them: greeter on two servers in two zones, probe on one, the cron job on all three.
      const nodes = JSON.parse((await orcaAt(a.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
      const zoneOf = (id: string) => nodes.find((n) => n.id === id)!.labels!.zone;
      const greeter = services.find((s) => s.name === "greeter")!;
      assert.deepEqual(greeter.placements!.map((p) => p.replica), [0, 1]);
      assert.equal(new Set(greeter.placements!.map((p) => zoneOf(p.node))).size, 2, JSON.stringify(greeter));
      assert.equal(services.find((s) => s.name === "probe")!.placements!.length, 1);
      // The cron job is placed too: the leader claims each firing and has the node that runs it run it.
      assert.equal(services.find((s) => s.name === "tick")!.placements!.length, 3);
      const table = await orcaAt(a.apiUrl, token, "status");
      assert.match(table.stdout, /NODES/);
      // Every server answers for probe, two of them by forwarding: the service sees the Host the client sent, and
      // never the forwarding headers; a client that sends them forged is routed and served as any other.
      for (const m of members) {
        const hostPort = new URL(m.httpUrl).host;
        const forgeries: Record<string, string>[] = [{}, {
          "x-orca-proxied": "forged",
          "x-orca-proxied-host": "evil.example",
        }];
        for (const forged of forgeries) {
          const res = await fetch(`${m.httpUrl}/probe`, { headers: forged });
          const text = await res.text();
          assert.equal(res.status, 200, text);
          assert.match(text, new RegExp(`env HTTP_HOST: ${hostPort.replaceAll(".", "\\.")}\n`));
          assert.match(text, /env HTTP_X_ORCA_PROXIED: \(unset\)/);
          assert.match(text, /env HTTP_X_ORCA_PROXIED_HOST: \(unset\)/);
        }
      }
    });

    await t.step(
      "orca deploy --plan shows where replicas would go and changes nothing; one that fits nowhere fails",
      async () => {
        const big = `[[service]]\nname = "wide"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
          `triggers = ["http:/wide"]\nreplicas = 3\n`;
        const dir = await writeProject({ wide: big });
        const planned = await orcaAt(c.apiUrl, token, "deploy", dir, "--plan");
        assert.equal(planned.code, 0, planned.stderr);
        assert.match(planned.stdout, /plan: 3 to place, 0 to migrate, 0 to stop, 0 cannot be placed/);
        assert.equal((planned.stdout.match(/place wide\/wide#\d on /g) ?? []).length, 3, planned.stdout);
        const json = JSON.parse((await orcaAt(c.apiUrl, token, "deploy", dir, "--plan", "--json")).stdout);
        assert.equal(new Set(json.placements.map((p: { node: string }) => p.node)).size, 3, "spread over 3 zones");
        const after = await call(a.apiUrl, token, "/services");
        assert.ok(
          !(after.body as { services: PlacedRow[] }).services.some((s) => s.name === "wide"),
          "nothing changed",
        );
        // Pinned to a zone no server is in: the plan says why for every node, and the deploy fails with nothing done.
        const nowhere = await writeProject({ wide: `${big}[service.placement]\nlabels = { zone = "z9" }\n` });
        const why = await orcaAt(c.apiUrl, token, "deploy", nowhere, "--plan");
        assert.match(why.stdout, /3 cannot be placed/);
        const refused = await orcaAt(b.apiUrl, token, "deploy", nowhere);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /fit on no node/);
        assert.match(refused.stderr, /zone/);
        const still = await call(a.apiUrl, token, "/services");
        assert.ok(!(still.body as { services: PlacedRow[] }).services.some((s) => s.name === "wide"));
        // Placed on a follower only, where it cannot start (a jobs handler cannot answer HTTP): the leader starts new
        // versions on every server they go to before it commits, so the deploy fails naming that server, and
        // nothing is deployed.
        const nodes = JSON.parse((await orcaAt(a.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
        const follower = nodes.find((n) => !n.leader)!;
        const broken = await writeProject({
          broken: `[[service]]\nname = "broken"\nmodule = "${guestsDir}/counter.handler.wasm"\n` +
            `triggers = ["http:/broken"]\n[service.placement]\nnode = "${follower.id}"\n`,
        });
        const failed = await orcaAt(c.apiUrl, token, "deploy", broken);
        assert.notEqual(failed.code, 0);
        assert.match(failed.stderr, new RegExp(`node ${follower.id} cannot start the deploy's services`));
        assert.match(failed.stderr, /cannot answer HTTP/);
        const none = await call(a.apiUrl, token, "/services");
        assert.ok(!(none.body as { services: PlacedRow[] }).services.some((s) => s.name === "broken"));
      },
    );

    await t.step("kill -9 the leader: a new one takes writes within 3 s, and the survivors keep serving", async () => {
      const listed = await orcaAt(a.apiUrl, token, "nodes", "--json");
      assert.equal(listed.code, 0, listed.stderr);
      const nodes = JSON.parse(listed.stdout) as NodeRow[];
      const leaderAddress = nodes.find((n) => n.leader)!.address;
      const leader = members.find((m) => leaderAddress.startsWith(`${m.ip}:`))!;
      const survivors = members.filter((m) => m !== leader);
      // A load across the kill: queue publishes to every server (forwarded to the leader), requests to the survivors.
      let stop = false;
      const acked: number[] = [];
      const failedRequests: string[] = [];
      const publishers = [0, 1, 2, 3].map(async (p) => {
        for (let i = 0; !stop; i++) {
          const target = members[(p + i) % members.length];
          try {
            const r = await call(target.apiUrl, token, "/queues/orders", { method: "POST", body: `m${p}-${i}` });
            if (r.status === 201) acked.push(...(r.body as { ids: number[] }).ids);
          } catch {
            // a server that is down, or a request cut off: not acknowledged, so nothing is owed
          }
        }
      });
      const requests = survivors.map(async (m) => {
        while (!stop) {
          const res = await fetch(`${m.httpUrl}/greet/load`, { signal: AbortSignal.timeout(5_000) }).catch((e) => e);
          if (!(res instanceof Response) || res.status !== 200) failedRequests.push(`${m.ip}: ${res.status ?? res}`);
          if (res instanceof Response) await res.body?.cancel();
        }
      });
      await new Promise((r) => setTimeout(r, 300));
      await leader.kill("SIGKILL");
      const killedAt = performance.now();
      // Three replicas: whichever server died, each survivor runs one (a lost node's replicas are not moved yet).
      const dir = await project("second", "http:/second/:name", 3);
      await eventually("a write accepted after the leader died", async () => {
        const r = await orcaAt(survivors[0].apiUrl, token, "deploy", dir);
        return r.code === 0;
      });
      const failoverMs = performance.now() - killedAt;
      console.log(`failover: first write accepted ${Math.round(failoverMs)} ms after kill -9 (includes the CLI)`);
      assert.ok(failoverMs < 10_000, `failover took ${failoverMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await Promise.all([...publishers, ...requests]);
      assert.deepEqual(failedRequests, [], "the survivors answered every request");
      assert.ok(acked.length > 0, "publishes were acknowledged during the load");
      assert.equal(new Set(acked).size, acked.length, "every acknowledged message has an id of its own");
      // Every acknowledged message is kept on every survivor (nobody consumes "orders": all are retained).
      for (const m of survivors) {
        const r = await call(m.apiUrl, token, "/queues");
        const orders = (r.body as { topics: { topic: string; retained: number }[] }).topics.find((t) =>
          t.topic === "orders"
        );
        assert.ok(orders && orders.retained >= acked.length, `${m.ip} kept ${orders?.retained} of ${acked.length}`);
      }
      console.log(`load: ${acked.length} publishes acknowledged across the kill, none lost`);
      for (const m of survivors) {
        assert.match(await eventually(`${m.ip} serves /greet`, () => greet(m, "/greet/again")), /, again, from C/);
        assert.match(await eventually(`${m.ip} serves /second`, () => greet(m, "/second/x")), /, x, from C/);
      }

      killed = leader;
    });

    await t.step("the killed server restarts, catches up and serves what was deployed while it was down", async () => {
      const back = await startMember(killed!.ip, killed!.home);
      members[members.indexOf(killed!)] = back;
      assert.match(
        await eventually(`${back.ip} serves /second`, () => greet(back, "/second/y"), 30_000),
        /, y, from C/,
      );
      const rows = await eventually("all caught up", async () => {
        const r = JSON.parse((await orcaAt(back.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
        return r.every((n) => !n.error && n.applied === r[0].applied) ? r : undefined;
      });
      assert.equal(rows.length, 3);
    });

    await t.step("the cron job ran each tick at most once cluster-wide across the failover", async () => {
      const window = 20_000 - (performance.now() - cronDeployed);
      if (window > 0) await new Promise((r) => setTimeout(r, window));
      const r = await call(members[0].apiUrl, token, "/services/ticker/tick/runs?limit=1000");
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const runs = (r.body as { runs: { scheduledAt: number; status: string }[] }).runs;
      const ticks = runs.map((x) => x.scheduledAt).sort((x, y) => x - y);
      assert.equal(new Set(ticks).size, ticks.length, "a tick ran twice");
      assert.ok(ticks.length >= 10, `only ${ticks.length} runs in 20 s`);
      const span = (ticks.at(-1)! - ticks[0]) / 1000 + 1;
      const failed = runs.filter((x) => x.status !== "ok").length;
      console.log(
        `cron: ${ticks.length} runs over ${span} ticks with a leader kill -9; ${span - ticks.length} missed, ` +
          `${failed} failed (its node lost)`,
      );
    });

    await t.step(
      "a server restarted with a wiped data dir is refused until it is removed; then it joins again",
      async () => {
        const rows = JSON.parse((await orcaAt(a.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
        const leaderAt = rows.find((n) => n.leader)!.address.split(":")[0];
        const lead = members.find((m) => m.ip === leaderAt)!;
        const victim = members.find((m) => m !== lead)!;
        const victimId = rows.find((n) => n.address.startsWith(`${victim.ip}:`))!.id;
        const slot = members.indexOf(victim);
        const wipe = async () => {
          for (const db of ["raft.db", "orca.db"]) {
            for (const suffix of ["", "-wal", "-shm"]) {
              await Deno.remove(`${victim.home}/${db}${suffix}`).catch(() => {});
            }
          }
        };
        await victim.kill("SIGKILL");
        await wipe(); // node.id and cluster.token are kept: the same identity with an empty log

        // Alone it starts a cluster of its own, never voting in the old one: the old leader's traffic is refused.
        const alone = await startMember(victim.ip, victim.home);
        members[slot] = alone;
        await eventually(
          "the refusal explained",
          () => Promise.resolve(/refused Raft traffic from server .*orca cluster remove/.test(alone.output())),
        ).catch((err) => {
          throw new Error(`${err.message}; its output:\n${alone.output()}`);
        });
        await alone.kill("SIGKILL");
        await wipe();

        // Asked to join under its old id, it is refused, and told to be removed first.
        const refused = await startMember(victim.ip, victim.home, ["--join", `${lead.ip}:17880`, "--token", token])
          .catch((err) => err as Error);
        assert.ok(refused instanceof Error, "a wiped server may not join under its old identity");
        assert.match(refused.message, /already a member of this cluster.*orca cluster remove/s);

        const removed = await orcaAt(lead.apiUrl, token, "cluster", "remove", victimId);
        assert.equal(removed.code, 0, removed.stderr);
        assert.match(removed.stdout, new RegExp(`removed ${victimId}`));
        const twice = await orcaAt(lead.apiUrl, token, "cluster", "remove", victimId);
        assert.equal(twice.code, 1);
        assert.match(twice.stderr, /no server .* in this cluster/);

        await wipe();
        const back = await startMember(victim.ip, victim.home, ["--join", `${lead.ip}:17880`, "--token", token]);
        members[slot] = back;
        await eventually("three caught-up voters again", async () => {
          const now = JSON.parse((await orcaAt(lead.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
          return now.length === 3 && now.every((n) => n.role === "voter" && !n.error) ? now : undefined;
        });
        assert.match(await eventually(`${back.ip} serves /second`, () => greet(back, "/second/z")), /, z, from C/);
      },
    );
  } finally {
    for (const m of members) await m.kill("SIGKILL");
  }
});
