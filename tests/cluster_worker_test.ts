/**
 * Worker nodes (`orca join`): one server on 127.0.0.1 and two workers on
 * 127.0.0.2 and .3, each its own ORCA_HOME and process group. The scheduler
 * places replicas on the workers; every proxy serves every route; a worker
 * killed with -9 loses its replicas to the others within the node timeout,
 * and back it converges to what is placed on it now, running nothing twice.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { Engine } from "../runtime/mod.ts";
import { PeerProxy } from "./peer_proxy.ts";
import { cliPath, examplesDir, guestsDir, launchServer, writeProject } from "./harness.ts";

const PORTS = { api: 18180, http: 18181 };
const TIMEOUT_SECS = 2;

interface Row {
  name: string;
  placements?: { replica: number; node: string; state: string }[];
}

interface NodeRow {
  id: string;
  role: string;
  leader?: boolean;
  address: string;
  labels?: Record<string, string>;
  error?: string;
}

async function hashOf(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  return Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** Starts `orca join` on `ip` (its own process group); resolves once it says it is ready. */
async function startWorker(
  ip: string,
  home: string,
  token: string,
  zone: string,
  env: Record<string, string> = {},
  join = `127.0.0.1:${PORTS.api}`,
) {
  const args = [
    "join",
    join,
    "--token",
    token,
    "--listen",
    ip,
    "--api-port",
    String(PORTS.api),
    "--http-port",
    String(PORTS.http),
    "--home",
    home,
    "--name",
    `worker-${zone}`,
    "--labels",
    `zone=${zone}`,
    "--workers",
    "1",
    "--pool-size",
    "1",
  ];
  const worker = await launchServer(args, { group: true, timeoutMs: 60_000, env });
  return { ip, home, httpUrl: `http://${ip}:${PORTS.http}`, apiUrl: `http://${ip}:${PORTS.api}`, ...worker };
}

Deno.test("workers: replicas placed on them, every proxy serves every route, a lost worker's replicas move", async () => {
  const homes = await Promise.all([1, 2, 3].map(() => Deno.makeTempDir({ prefix: "orca-worker-" })));
  let server: Member | undefined;
  const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
  try {
    // The server runs the control plane only: every replica goes to the workers.
    const flags = ["--labels", "zone=z1", "--node-timeout-secs", "2", "--no-workloads"];
    server = await startMember("127.0.0.1", homes[0], flags, PORTS);
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    workers.push(await startWorker("127.0.0.2", homes[1], token, "z2"));
    // The z3 worker finds a GPU: an nvidia-smi on its PATH prints what a real one printed.
    const bin = await Deno.makeTempDir({ prefix: "orca-fake-smi-" });
    await Deno.writeTextFile(`${bin}/nvidia-smi`, "#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, 81559'\n");
    await Deno.chmod(`${bin}/nvidia-smi`, 0o755);
    workers.push(await startWorker("127.0.0.3", homes[2], token, "z3", { PATH: `${bin}:${Deno.env.get("PATH")}` }));
    const nodes = await eventually("two workers registered and answering", async () => {
      const r = await orcaAt(server!.apiUrl, token, "nodes", "--json");
      const rows = r.code === 0 ? JSON.parse(r.stdout) as NodeRow[] : [];
      return rows.filter((n) => n.role === "worker" && !n.error).length === 2 ? rows : undefined;
    });
    assert.deepEqual(nodes.map((n) => `${n.role} ${n.labels?.zone}`).sort(), ["voter z1", "worker z2", "worker z3"]);
    const workerIds = nodes.filter((n) => n.role === "worker").map((n) => n.id);

    // Three replicas over the workers' two zones; one pinned to a worker by name; and a fleet of 20 services with
    // two replicas each, spread over the zones.
    const fleet = Array.from(
      { length: 20 },
      (_, i) =>
        `[[service]]\nname = "f${i}"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/f${i}/:name"]\nreplicas = 2\n`,
    ).join("\n");
    const dir = await writeProject({
      fleet,
      web: `[[service]]\nname = "web"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/web/:name"]\nreplicas = 3\n`,
      pinned: `[[service]]\nname = "pinned"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/pinned/:name"]\n[service.placement]\nnode = "worker-z3"\n`,
      // A cron job on a worker: the leader claims each firing and has the worker run it.
      ticker: `[[service]]\nname = "tick"\nmodule = "${guestsDir}/tick.wasm"\ntriggers = ["cron:* * * * * *"]\n` +
        `[service.placement]\nnode = "worker-z3"\n`,
    });
    const planned = await orcaAt(server.apiUrl, token, "deploy", dir, "--plan", "--json");
    assert.equal(planned.code, 0, planned.stderr);
    const plan = JSON.parse(planned.stdout) as { placements: { workload: string; replica: number; node: string }[] };
    const deployed = await orcaAt(server.apiUrl, token, "deploy", dir);
    assert.equal(deployed.code, 0, deployed.stderr);
    const rows = await eventually("every replica ready", async () => {
      const r = await call(server!.apiUrl, token, "/services");
      const list = (r.body as { services: Row[] }).services;
      return list.every((s) => s.placements?.every((p) => p.state === "ready")) ? list : undefined;
    });
    // What was deployed is what the plan printed, and each fleet service has a replica in each zone.
    const projectOf = (name: string) =>
      ({ web: "web", pinned: "pinned", tick: "ticker" } as Record<string, string>)[name];
    const placedNow = rows.flatMap((s) =>
      (s.placements ?? []).map((p) => `${projectOf(s.name) ?? "fleet"}/${s.name}#${p.replica}@${p.node}`)
    ).sort();
    assert.deepEqual(placedNow, plan.placements.map((p) => `${p.workload}#${p.replica}@${p.node}`).sort());
    for (const s of rows.filter((r) => /^f\d+$/.test(r.name))) {
      assert.equal(new Set(s.placements!.map((p) => p.node)).size, 2);
    }
    for (const url of [server.httpUrl, ...workers.map((w) => w.httpUrl)]) {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${url}/f${i}/x`);
        assert.equal(res.status, 200, `${url}/f${i}: ${await res.text()}`);
      }
    }
    const web = rows.find((s) => s.name === "web")!;
    assert.equal(web.placements!.length, 3);
    const serverId = nodes.find((n) => n.role === "voter")!.id;
    assert.ok(!rows.some((s) => s.placements?.some((p) => p.node === serverId)), "nothing on a --no-workloads server");
    for (const id of workerIds) assert.ok(web.placements!.some((p) => p.node === id), `a replica on ${id}`);
    const z3 = nodes.find((n) => n.labels?.zone === "z3")!.id;
    assert.deepEqual(rows.find((s) => s.name === "pinned")!.placements!.map((p) => p.node), [z3]);
    for (const url of [server.httpUrl, ...workers.map((w) => w.httpUrl)]) {
      for (const path of ["/web/a", "/pinned/b"]) {
        const res = await fetch(`${url}${path}`);
        const body = await res.text();
        assert.equal(res.status, 200, `${url}${path}: ${body}`);
      }
    }
    // A GPU service goes to the worker with the GPU (when a Docker engine offers containers there).
    if (await new Engine().ping()) {
      const gpu = await writeProject({
        train: `[[service]]\nname = "train"\nimage = "orca-examples/busybox:1"\ncommand = ["/bin/sleep", "3600"]\n` +
          `[service.resources]\ngpu = { vendor = "nvidia", count = 1 }\n`,
      });
      const planned = await orcaAt(server.apiUrl, token, "deploy", gpu, "--plan", "--json");
      assert.equal(planned.code, 0, planned.stderr);
      const placement = JSON.parse(planned.stdout).placements;
      assert.deepEqual(placement.map((p: { node: string; gpu?: unknown }) => [p.node, p.gpu]), [[z3, {
        group: 0,
        count: 1,
      }]]);
      // Deployed for real, the worker creates its container with the GPU's DeviceRequest; this engine has no
      // NVIDIA driver, so it refuses to start it, and the deploy fails naming the worker, with nothing deployed.
      const tried = await orcaAt(server.apiUrl, token, "deploy", gpu);
      assert.notEqual(tried.code, 0);
      assert.match(tried.stderr, new RegExp(`node ${z3} cannot start`));
      assert.match(tried.stderr, /nvidia/i);
      const none = (await call(server.apiUrl, token, "/services")).body as { services: Row[] };
      assert.ok(!none.services.some((s) => s.name === "train"));
    }
    const ticked = await eventually("the cron job ran on the worker", async () => {
      const r = await call(server!.apiUrl, token, "/services/ticker/tick/runs?limit=100");
      const runs = (r.body as { runs: { status: string }[] }).runs;
      return runs.filter((x) => x.status === "ok").length >= 2 ? runs : undefined;
    }, 20_000);
    assert.ok(ticked.length >= 2);
    // A worker's replicas' logs and stats, through the server: stats summed over every node that runs one.
    const stats = await orcaAt(server.apiUrl, token, "stats", "pinned", "--json");
    assert.equal(stats.code, 0, stats.stderr);
    const f0 = JSON.parse((await orcaAt(server.apiUrl, token, "stats", "f0", "--json")).stdout);
    assert.equal(f0.nodes.length, 2, JSON.stringify(f0));
    assert.ok(f0.nodes.every((n: { error?: string }) => !n.error), JSON.stringify(f0));
    assert.equal(f0.requests, f0.nodes.reduce((sum: number, n: { requests: number }) => sum + n.requests, 0));
    assert.ok(f0.requests >= 3, "the three proxies' requests, wherever they were served");

    // Kill -9 the z2 worker: its replica moves within the node timeout; every other proxy keeps answering.
    const victim = workers[0];
    const victimId = nodes.find((n) => n.labels?.zone === "z2")!.id;
    // A bounded load on the other proxies across the kill (web has a replica on the other worker too).
    let stop = false;
    let failed = 0;
    let answered = 0;
    const load = [server.httpUrl, workers[1].httpUrl].map(async (url) => {
      while (!stop) {
        const res = await fetch(`${url}/web/load`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
        await res?.body?.cancel();
        if (res?.status === 200) answered++;
        else failed++;
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await victim.end("SIGKILL");
    const killed = performance.now();
    await eventually("web's replica moved off the lost worker", async () => {
      const r = await call(server!.apiUrl, token, "/services");
      const w = (r.body as { services: Row[] }).services.find((s) => s.name === "web")!;
      return w.placements!.length === 3 && w.placements!.every((p) => p.node !== victimId && p.state === "ready");
    }, 30_000);
    const movedMs = performance.now() - killed;
    stop = true;
    await Promise.all(load);
    console.log(
      `worker lost: its replica ready elsewhere ${Math.round(movedMs)} ms after kill -9 (timeout 2 s); ` +
        `${failed} failed and ${answered} answered requests on the other proxies meanwhile`,
    );
    assert.equal(failed, 0, "requests to a lost worker's service go to its other replica");
    assert.ok(movedMs < (TIMEOUT_SECS + 5) * 1000, `${movedMs} ms`);
    for (const url of [server.httpUrl, workers[1].httpUrl]) {
      const res = await fetch(`${url}/web/c`);
      assert.equal(res.status, 200, await res.text());
    }

    // A deploy pinned to the offline worker: 503 naming it (it may fit once the worker is back), nothing deployed.
    const later = await writeProject({
      later: `[[service]]\nname = "later"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
        `triggers = ["http:/later/:name"]\n[service.placement]\nnode = "worker-z2"\n`,
    });
    const offline = await call(server.apiUrl, token, "/deploy?plan=0", {
      method: "POST",
      body: JSON.stringify({
        projects: {
          later: [{
            name: "later",
            module: "hello.wasm",
            module_hash: await hashOf(`${examplesDir}/services/hello-c/hello.wasm`),
            triggers: ["http:/later/:name"],
            placement: { node: "worker-z2" },
          }],
        },
      }),
    });
    assert.equal(offline.status, 503, JSON.stringify(offline.body));
    assert.match(JSON.stringify(offline.body), new RegExp(`${victimId}: unhealthy`));
    assert.ok(offline.headers.get("retry-after"));

    // Back: it connects again, runs nothing that moved away, and serves every route by forwarding.
    workers[0] = await startWorker("127.0.0.2", homes[1], token, "z2");
    const text = await eventually("the returned worker serves /web", async () => {
      const res = await fetch(`${workers[0].httpUrl}/web/d`);
      return res.status === 200 ? await res.text() : undefined;
    }, 30_000);
    assert.match(text, /, d, from C/);
    // The service pinned to it can be deployed now.
    const redeployed = await orcaAt(server.apiUrl, token, "deploy", later);
    assert.equal(redeployed.code, 0, redeployed.stderr);
    await eventually("later serves from the returned worker", async () => {
      const res = await fetch(`${server!.httpUrl}/later/e`);
      return res.status === 200 && /, e, from C/.test(await res.text());
    }, 30_000);
    const after = (await call(server.apiUrl, token, "/services")).body as { services: Row[] };
    assert.equal(after.services.find((s) => s.name === "web")!.placements!.length, 3, "no replica runs twice");
    const own = await fetch(`${workers[0].apiUrl}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } });
    const local = (await own.json()).services as { name: string; state: string }[];
    assert.equal(local.find((s) => s.name === "web")?.state, "remote", "the returned worker runs no web replica");
    // Its API is the cluster's own.
    const refused = await fetch(`${workers[0].apiUrl}/api/v1/services`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
  } finally {
    for (const w of workers) await w.end("SIGKILL").catch(() => {});
    await server?.kill("SIGKILL").catch(() => {});
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
});

Deno.test("orca join without the cluster's token, or with a malformed address or name: a usage error, nothing made", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-worker-" });
  try {
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cliPath, "join", ...args, "--home", home, "--api-port", "0", "--http-port", "0"],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const noToken = await run("127.0.0.1:1");
    assert.equal(noToken.code, 2, noToken.stderr);
    assert.match(noToken.stderr, /needs the cluster's token/);
    assert.equal((await run()).code, 2);
    assert.match((await run("nowhere")).stderr, /must be host:port/);
    assert.match((await run("127.0.0.1:1", "--token", "t".repeat(32), "--name", "a b")).stderr, /--name must be/);
    await assert.rejects(Deno.stat(`${home}/cluster.token`), "no token was made up");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a worker cut off from the control plane keeps serving its routes; healed, it converges to what moved", async () => {
  const homes = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "orca-worker-cut-" })));
  const PEER_PORT = 18190;
  // The server is reached through a proxy the test owns: cutting it cuts the worker's socket.
  const proxy = new PeerProxy({ hostname: "127.0.0.1", port: PEER_PORT }, { hostname: "127.0.0.1", port: PORTS.api });
  let server: Member | undefined;
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    const flags = ["--labels", "zone=z1", "--node-timeout-secs", "2", "--advertise", `127.0.0.1:${PEER_PORT}`];
    server = await startMember("127.0.0.1", homes[0], flags, PORTS);
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    worker = await startWorker("127.0.0.2", homes[1], token, "z2", {}, `127.0.0.1:${PEER_PORT}`);
    const workerId = await eventually("the worker registered", async () => {
      const r = JSON.parse((await orcaAt(server!.apiUrl, token, "nodes", "--json")).stdout) as NodeRow[];
      return r.find((n) => n.role === "worker" && !n.error)?.id;
    });
    const module = `${examplesDir}/services/hello-c/hello.wasm`;
    const dir = await writeProject({
      app: `[[service]]\nname = "mine"\nmodule = "${module}"\ntriggers = ["http:/mine/:name"]\n` +
        `[service.placement]\nnode = "worker-z2"\n\n` +
        `[[service]]\nname = "free"\nmodule = "${module}"\ntriggers = ["http:/free/:name"]\n` +
        `[service.placement]\nlabels = { zone = "z2" }\n`,
    });
    assert.equal((await orcaAt(server.apiUrl, token, "deploy", dir)).code, 0);
    const rows = async () => ((await call(server!.apiUrl, token, "/services")).body as { services: Row[] }).services;
    await eventually(
      "both ready on the worker",
      async () => (await rows()).every((s) => s.placements?.every((p) => p.node === workerId && p.state === "ready")),
    );
    // Relax free's placement (any zone) so that it can move once the worker is lost; mine stays pinned.
    const relaxed = await writeProject({
      app: `[[service]]\nname = "mine"\nmodule = "${module}"\ntriggers = ["http:/mine/:name"]\n` +
        `[service.placement]\nnode = "worker-z2"\n\n` +
        `[[service]]\nname = "free"\nmodule = "${module}"\ntriggers = ["http:/free/:name"]\nenv = { V = "2" }\n`,
    });
    assert.equal((await orcaAt(server.apiUrl, token, "deploy", relaxed)).code, 0);
    await eventually("free at its new version on the worker", async () => {
      const free = (await rows()).find((s) => s.name === "free")!;
      return free.placements?.[0]?.node === workerId && free.placements[0].state === "ready";
    });

    proxy.isolate("*");
    // Cut off, the worker serves its routes from its own replicas; the leader moves free (not pinned) away.
    for (const path of ["/mine/a", "/free/b"]) {
      const res: Response = await fetch(`${worker.httpUrl}${path}`);
      const body = await res.text();
      assert.equal(res.status, 200, `${path} while cut off: ${body}`);
    }
    await eventually("free moved to the server", async () => {
      const free = (await rows()).find((s) => s.name === "free")!;
      return free.placements?.[0]?.node !== workerId && free.placements?.[0]?.state === "ready";
    }, 20_000);
    const mine = (await rows()).find((s) => s.name === "mine")!;
    assert.equal(mine.placements![0].node, workerId, "a pinned replica stays with its node");
    const pinned: Response = await fetch(`${worker.httpUrl}/mine/c`);
    await pinned.body?.cancel();
    assert.equal(pinned.status, 200);

    proxy.heal();
    // Healed: the worker reconnects (after its backoff), stops free (it moved), and forwards its requests.
    await eventually("the worker runs free no more", async () => {
      const res = await fetch(`${worker!.apiUrl}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } });
      const local = (await res.json()).services as { name: string; state: string }[];
      return local.find((s) => s.name === "free")?.state === "remote";
    }, 40_000);
    const free: Response = await fetch(`${worker.httpUrl}/free/d`);
    const answer = await free.text();
    assert.equal(free.status, 200, answer);
    assert.equal((await rows()).find((s) => s.name === "free")!.placements!.length, 1, "no replica runs twice");
  } finally {
    await worker?.end("SIGKILL").catch(() => {});
    await server?.kill("SIGKILL").catch(() => {});
    await proxy.close();
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
});

Deno.test("three servers and two workers: the leader killed -9, the workers follow the new one and keep their replicas", async () => {
  const ips = [1, 2, 3, 4, 5].map((i) => `127.0.0.${i}`);
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-worker-ha-" })));
  const servers: Member[] = [];
  const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
  // Long enough for a worker to find the new leader (its first round of servers, then a 5 s backoff).
  const timeout = ["--node-timeout-secs", "15"];
  try {
    servers.push(await startMember(ips[0], homes[0], ["--labels", "zone=z1", ...timeout], PORTS));
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    for (const i of [1, 2]) {
      const join = ["--join", `${ips[0]}:${PORTS.api}`, "--token", token, "--labels", `zone=z${i + 1}`, ...timeout];
      servers.push(await startMember(ips[i], homes[i], join, PORTS));
    }
    for (const i of [3, 4]) workers.push(await startWorker(ips[i], homes[i], token, `z${i + 1}`));
    const nodes = await eventually("3 voters and 2 workers", async () => {
      const r = await orcaAt(servers[0].apiUrl, token, "nodes", "--json");
      const rows = r.code === 0 ? JSON.parse(r.stdout) as NodeRow[] : [];
      const ok = rows.filter((n) => n.role === "voter").length === 3 &&
        rows.filter((n) => n.role === "worker").length === 2;
      return ok && rows.every((n) => !n.error) ? rows : undefined;
    }, 30_000);
    const workerIds = nodes.filter((n) => n.role === "worker").map((n) => n.id);
    const module = `${examplesDir}/services/hello-c/hello.wasm`;
    const web = await writeProject({
      web: `[[service]]\nname = "web"\nmodule = "${module}"\ntriggers = ["http:/web/:name"]\nreplicas = 5\n`,
    });
    assert.equal((await orcaAt(servers[1].apiUrl, token, "deploy", web)).code, 0);
    const placedOn = async (via: Member, name: string) => {
      const r = await call(via.apiUrl, token, "/services");
      return (r.body as { services: Row[] }).services.find((s) => s.name === name);
    };
    await eventually("web on all five nodes, ready", async () => {
      const w = await placedOn(servers[0], "web");
      return w?.placements?.length === 5 && new Set(w.placements.map((p) => p.node)).size === 5 &&
        w.placements.every((p) => p.state === "ready");
    });

    const leaderAddress = nodes.find((n) => n.leader)!.address;
    const leader = servers.find((m) => leaderAddress.startsWith(`${m.ip}:`))!;
    const survivor = servers.find((m) => m !== leader)!;
    await leader.kill("SIGKILL");
    // A deploy after the failover reaches the workers through the new leader's socket to them.
    const after = await writeProject({
      after: `[[service]]\nname = "after"\nmodule = "${module}"\ntriggers = ["http:/after/:name"]\nreplicas = 4\n`,
    });
    await eventually(
      "a deploy accepted by the new leader",
      async () => (await orcaAt(survivor.apiUrl, token, "deploy", after)).code === 0,
    );
    await eventually("after ready on the workers too", async () => {
      const a = await placedOn(survivor, "after");
      return workerIds.every((id) => a?.placements?.some((p) => p.node === id && p.state === "ready"));
    }, 40_000);
    for (
      const url of [
        ...servers.filter((m) => m !== leader).map((m) => m.httpUrl),
        ...workers.map((w) => w.httpUrl),
      ]
    ) {
      for (const path of ["/web/x", "/after/y"]) {
        const res = await fetch(`${url}${path}`);
        const body = await res.text();
        assert.equal(res.status, 200, `${url}${path}: ${body}`);
      }
    }
    // The workers kept their replicas of web: they found the new leader within the node timeout.
    const w = await placedOn(survivor, "web");
    for (const id of workerIds) assert.ok(w!.placements!.some((p) => p.node === id), `web still on worker ${id}`);
  } finally {
    for (const wk of workers) await wk.end("SIGKILL").catch(() => {});
    for (const m of servers) await m.kill("SIGKILL").catch(() => {});
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
});
