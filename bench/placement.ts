/**
 * `deno task bench cluster`, placement: five nodes on 127.0.0.1-5, one
 * server and four workers (`orca join`; zones z1-z5, a node timeout of 2 s).
 * The time from `POST /deploy` of `BENCH_SERVICES` (default 200) Wasm HTTP
 * services, 2 replicas each, until every route answers through every node's
 * proxy; the replicas placed per second of that; and, over `BENCH_LOSSES`
 * (default 3) kill -9 of a worker that holds replicas, the time until every
 * one of its replicas serves elsewhere (ready on another node), p50 and max.
 */

import { eventually, startMember } from "../tests/cluster_harness.ts";
import { examplesDir, launchServer } from "../tests/harness.ts";

const SERVICES = Number(Deno.env.get("BENCH_SERVICES") ?? 200);
const LOSSES = Number(Deno.env.get("BENCH_LOSSES") ?? 3);
const PORTS = { api: 18980, http: 18981 };
const TIMEOUT_SECS = 2;

interface Row {
  name: string;
  placements?: { replica: number; node: string; state: string }[];
}

interface Node {
  ip: string;
  apiUrl: string;
  httpUrl: string;
  kill(): Promise<void>;
}

async function api(m: Node, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(`${m.apiUrl}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    signal: AbortSignal.timeout(120_000),
  });
}

async function services(m: Node, token: string): Promise<Row[]> {
  return (await (await api(m, token, "/services?stale=1")).json()).services;
}

/** Whether every route answers 200 through every proxy (`sample`: each proxy asks every `sample`-th route). */
async function allAnswer(members: Node[], sample: number): Promise<boolean> {
  for (const m of members) {
    for (let i = 0; i < SERVICES; i += sample) {
      const res = await fetch(`${m.httpUrl}/s${i}/x`).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status !== 200) return false;
    }
  }
  return true;
}

export async function benchPlacement(): Promise<string[]> {
  const ips = [1, 2, 3, 4, 5].map((i) => `127.0.0.${i}`);
  const homes = await Promise.all(ips.map(() => Deno.makeTempDir({ prefix: "orca-bench-place-" })));
  const server = await startMember(ips[0], homes[0], ["--labels", "zone=z1", "--node-timeout-secs", "2"], PORTS);
  const members: Node[] = [{ ...server, kill: () => server.kill("SIGKILL") }];
  const lines: string[] = [];
  const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
  const worker = async (i: number): Promise<Node> => {
    const flags = ["--listen", ips[i], "--api-port", String(PORTS.api), "--http-port", String(PORTS.http)];
    const w = await launchServer(
      ["join", `${ips[0]}:${PORTS.api}`, "--token", token, "--home", homes[i], "--labels", `zone=z${i + 1}`, ...flags],
      { group: true, timeoutMs: 60_000 },
    );
    return {
      ip: ips[i],
      apiUrl: `http://${ips[i]}:${PORTS.api}`,
      httpUrl: `http://${ips[i]}:${PORTS.http}`,
      kill: () => w.end("SIGKILL"),
    };
  };
  try {
    for (let i = 1; i < ips.length; i++) members.push(await worker(i));
    await eventually("five registered servers", async () => {
      const nodes = (await (await api(members[0], token, "/nodes")).json()).nodes as { capacity?: unknown }[];
      return nodes.length === 5 && nodes.every((n) => n.capacity);
    }, 60_000);
    const bytes = await Deno.readFile(`${examplesDir}/services/hello-c/hello.wasm`);
    const hash = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await (await api(members[0], token, `/modules/${hash}`, { method: "PUT", body: bytes })).body?.cancel();
    const specs = Array.from({ length: SERVICES }, (_, i) => ({
      name: `s${i}`,
      module: "hello.wasm",
      module_hash: hash,
      triggers: [`http:/s${i}/:name`],
      replicas: 2,
    }));
    const t0 = performance.now();
    const res = await api(members[0], token, "/deploy", {
      method: "POST",
      body: JSON.stringify({ projects: { bench: specs } }),
    });
    if (!res.ok) throw new Error(`deploy answered ${res.status}: ${await res.text()}`);
    await res.body?.cancel();
    const committed = performance.now() - t0;
    await eventually("every route through every proxy", () => allAnswer(members, 1), 600_000);
    const served = performance.now() - t0;
    lines.push(
      `placement: deploy of ${SERVICES} Wasm services x 2 replicas on 1 server + 4 workers: committed in ${
        committed.toFixed(0)
      } ms, every route answering through every proxy after ${served.toFixed(0)} ms; ${
        (2 * SERVICES / (served / 1000)).toFixed(0)
      } replicas placed and serving per second`,
    );

    const losses: number[] = [];
    for (let k = 0; k < LOSSES; k++) {
      const rows = await services(members[0], token);
      const nodes = (await (await api(members[0], token, "/nodes")).json()).nodes as {
        id: string;
        address: string;
        leader: boolean;
      }[];
      // A worker that holds replicas.
      const victimNode = nodes.find((n) => !n.leader && rows.some((r) => r.placements?.some((p) => p.node === n.id)))!;
      const i = members.findIndex((m) => victimNode.address.startsWith(`${m.ip}:`));
      const held = rows.flatMap((r) => r.placements ?? []).filter((p) => p.node === victimNode.id).length;
      const watcher = members[0];
      await members[i].kill();
      const killed = performance.now();
      await eventually("its replicas ready elsewhere", async () => {
        const now = await services(watcher, token);
        return now.every((r) =>
          !r.placements || r.placements.every((p) => p.node !== victimNode.id && p.state === "ready")
        );
      }, 120_000);
      losses.push(performance.now() - killed);
      lines.push(
        `  loss ${k + 1}: ${held} replicas on ${victimNode.id.slice(0, 8)} ready elsewhere after ${
          losses[k].toFixed(0)
        } ms`,
      );
      members[i] = await worker(i);
    }
    losses.sort((a, b) => a - b);
    lines.push(
      `worker loss (kill -9, node timeout ${TIMEOUT_SECS} s) -> all its replicas serving elsewhere: p50 ${
        losses[Math.floor(losses.length / 2)].toFixed(0)
      } ms, max ${losses[losses.length - 1].toFixed(0)} ms over ${losses.length}`,
    );
  } finally {
    for (const m of members) await m.kill().catch(() => {});
    for (const h of homes) await Deno.remove(h, { recursive: true }).catch(() => {});
  }
  return lines;
}

if (import.meta.main) console.log((await benchPlacement()).join("\n"));
