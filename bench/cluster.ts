/**
 * `deno task bench cluster`: the control plane on the Raft log, side by side
 * in one run on loopback. A lone server of this build against three servers
 * (127.0.0.1-3): durable deploys/s and queue publishes/s at concurrency 1, 16
 * and 64, and leader failover (kill -9, then the first write accepted) over
 * 10 kills. The lone server and the three run side by side, measured in
 * turn cell by cell over `BENCH_ROUNDS` rounds (default 3): the medians and
 * each round's ratio. With `BENCH_BASELINE=<checkout>` (e.g. `git worktree
 * add /tmp/orca-base <commit>` and its `deno task deps`), a lone server of
 * that build runs beside this build's, the two measured the same way, for
 * the "no more than 10% slower" check. `BENCH_LONE_ONLY=1` skips the three
 * servers.
 */

import { eventually, type Member, startMember } from "../tests/cluster_harness.ts";
import { cliPath, examplesDir, startServer } from "../tests/harness.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const KILLS = Number(Deno.env.get("BENCH_KILLS") ?? 10);
const PORTS = { api: 18880, http: 18881 };

interface Target {
  apiUrl: string;
  token: string;
}

/** A lone `orca server` from `cli` (this build's or the baseline's) on 127.0.0.1. */
async function startLone(cli: string): Promise<Target & { stop(): Promise<void> }> {
  const server = await startServer(undefined, {}, ["--workers", "1"], cli);
  return { apiUrl: server.apiUrl, token: server.token, stop: server.kill };
}

async function post(t: Target, path: string, body: BodyInit): Promise<number> {
  const res = await fetch(`${t.apiUrl}/api/v1${path}`, {
    method: path === "/deploy" ? "POST" : path.startsWith("/modules") ? "PUT" : "POST",
    headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  await res.body?.cancel();
  return res.status;
}

/** Operations per second that `op` completes with 2xx, from `concurrency` loops over `SECONDS`. */
async function rate(concurrency: number, op: (loop: number, i: number) => Promise<number>): Promise<number> {
  let ok = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
    for (let i = 0; performance.now() < end; i++) if ((await op(loop, i).catch(() => 0)) < 300) ok++;
  }));
  return ok / SECONDS;
}

/** Uploads the C example once; returns a deploy body maker (each one a new version: a real change). */
async function deployer(t: Target): Promise<(n: string) => string> {
  const bytes = await Deno.readFile(`${examplesDir}/services/hello-c/hello.wasm`);
  const hash = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await post(t, `/modules/${hash}`, bytes);
  return (n) =>
    JSON.stringify({
      projects: { bench: [{ name: "svc", module: "hello.wasm", module_hash: hash, env: { N: n }, triggers: [] }] },
    });
}

type Cells = [string, () => Promise<number>][];

/** The measurements of one target, each a function: deploys and publishes at concurrency 1, 16 and 64. */
async function cells(t: Target): Promise<Cells> {
  const body = await deployer(t);
  return [1, 16, 64].flatMap((c): Cells => [
    [`publish c=${c}`, () => rate(c, (loop, i) => post(t, "/queues/bench", `m${loop}-${i}`))],
    [`deploy c=${c}`, () => rate(c, (loop, i) => post(t, "/deploy", body(`${c}-${loop}-${i}`)))],
  ]);
}

/** The `q` quantile of `v` (0.5: the median). */
const pct = (v: number[], q: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(q * v.length))];
const median = (v: number[]) => pct(v, 0.5);

/**
 * Two targets' cells measured in turn, cell by cell, over `rounds` rounds (so a slow minute of the machine falls
 * on both alike): a line per cell with the medians of each, the median of each round's ratio (b / a), and those.
 */
async function inTurn(a: Cells, b: Cells, rounds: number, names: [string, string]): Promise<string[]> {
  const runs = a.map(([name]) => ({ name, a: [] as number[], b: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < a.length; i++) {
      runs[i].a.push(await a[i][1]());
      runs[i].b.push(await b[i][1]());
    }
  }
  return [
    `${"".padEnd(14)} ${names[0].padStart(9)} ${names[1].padStart(10)} ${"ratio".padStart(6)}  ` +
    `(medians of ${rounds} rounds; ratio: the median of each round's, measured in turn)`,
    ...runs.map(({ name, a, b }) => {
      const ratios = b.map((v, i) => v / a[i]);
      return `${name.padEnd(14)} ${median(a).toFixed(0).padStart(9)} ${median(b).toFixed(0).padStart(10)} ` +
        `${median(ratios).toFixed(2).padStart(5)}x  [${ratios.map((r) => r.toFixed(2)).join(" ")}]`;
    }),
  ];
}

/** The baseline's lone server and this build's, both up, measured in turn (ratio: this build's / the baseline's). */
async function sideBySide(baseline: string, rounds: number): Promise<string[]> {
  const mine = await startLone(cliPath);
  const theirs = await startLone(`${baseline}/cli.ts`).catch(async (err) => (await mine.stop(), Promise.reject(err)));
  try {
    return await inTurn(await cells(theirs), await cells(mine), rounds, ["baseline", "lone"]);
  } finally {
    await mine.stop();
    await theirs.stop();
  }
}

/** The index in `members` of the leader, once all three answer. */
async function leaderOf(members: Member[], token: string): Promise<number> {
  const address = await eventually("a leader", async () => {
    const res = await fetch(`${members[0].apiUrl}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
    const nodes = (await res.json()).nodes as { address: string; leader: boolean; error?: string }[];
    return nodes.length === 3 && nodes.every((n) => !n.error) ? nodes.find((n) => n.leader)?.address : undefined;
  }, 60_000);
  return members.findIndex((m) => address.startsWith(`${m.ip}:`));
}

async function failovers(members: Member[], token: string): Promise<number[]> {
  const times: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const i = await leaderOf(members, token);
    const victim = members[i];
    await victim.kill("SIGKILL");
    const t0 = performance.now();
    const survivor = members[(i + 1) % 3];
    await eventually("a write after the kill", async () => {
      return (await post({ apiUrl: survivor.apiUrl, token }, "/queues/failover", "x").catch(() => 0)) === 201;
    }, 30_000);
    times.push(performance.now() - t0);
    members[i] = await startMember(victim.ip, victim.home, [], PORTS);
  }
  return times;
}

export async function benchCluster(): Promise<string[]> {
  const lines: string[] = [];
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
  const baseline = Deno.env.get("BENCH_BASELINE");
  if (baseline) {
    lines.push(...await sideBySide(baseline, rounds));
    if (Deno.env.get("BENCH_LONE_ONLY")) return lines;
    lines.push("");
  }
  const homes = await Promise.all([1, 2, 3].map(() => Deno.makeTempDir({ prefix: "orca-bench-cluster-" })));
  const members: Member[] = [await startMember("127.0.0.1", homes[0], [], PORTS)];
  const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
  try {
    for (const i of [1, 2]) {
      members.push(
        await startMember(`127.0.0.${i + 1}`, homes[i], ["--join", `127.0.0.1:${PORTS.api}`, "--token", token], PORTS),
      );
    }
    // The lone server runs beside the three (idle while they are measured, as they are while it is). Writes go to
    // the leader, as a client that follows the leader's address would send them; through a follower they are
    // forwarded, one more hop, measured apart.
    const lone = await startLone(cliPath);
    try {
      const leader = members[await leaderOf(members, token)];
      const follower = members.find((m) => m !== leader)!;
      const three = await cells({ apiUrl: leader.apiUrl, token });
      lines.push(...await inTurn(await cells(lone), three, rounds, ["lone", "3 servers"]));
      lines.push(`(per second, 2xx only; writes sent to the leader, ${leader.ip})`);
      const forwarded = await cells({ apiUrl: follower.apiUrl, token });
      const [name, run] = forwarded.find(([n]) => n === "publish c=64")!;
      lines.push(`${name} through a follower (${follower.ip}, forwarded to the leader): ${(await run()).toFixed(0)}/s`);
    } finally {
      await lone.stop();
    }
    const times = await failovers(members, token);
    lines.push(
      `failover over ${times.length} kill -9 of the leader: first write accepted p50 ${
        pct(times, 0.5).toFixed(0)
      } ms, ` +
        `p99 ${pct(times, 0.99).toFixed(0)} ms (goal p99 <= 3000 ms)`,
    );
  } finally {
    for (const m of members) await m.kill("SIGKILL");
  }
  return lines;
}
