/**
 * `deno task bench:raft`: durable writes per second and latency (p50, p99) of
 * a 3-node Orca Raft cluster (the real server processes of raft/server.ts,
 * SQLite with synchronous=FULL, the WebSocket transport) against a 3-member
 * etcd, on this machine, with one load generator (bench/raft_load.ts): closed
 * loops of 1, 16 and 64 clients writing to the leader, the two clusters
 * taking turns at each concurrency. Every write is acknowledged only once it
 * is on disk on a majority. Also prints how many entries Orca's leader stored
 * per fsync.
 *
 *   deno task bench:raft [--seconds 5] [--skip-etcd]
 */

import { parseArgs } from "node:util";
import { ProcessCluster } from "../raft/process_cluster.ts";
import { findEtcd, startEtcd } from "./raft_etcd.ts";
import { closedLoop, type LoadResult, send } from "./raft_load.ts";

const CONCURRENCY = [1, 16, 64];
/** Every write's value: 64 bytes. */
const VALUE = "v".repeat(64);

/** A cluster under test: one run of the load at `concurrency` against its leader. */
interface Target {
  name: string;
  run(concurrency: number, ms: number): Promise<LoadResult & { perFsync?: number }>;
  stop(): Promise<void>;
}

async function orca(dir: string): Promise<Target> {
  const token = crypto.randomUUID();
  const cluster = await ProcessCluster.start({ size: 3, dir, token, distinctHosts: true });
  let leader: { id: string } | undefined;
  const end = performance.now() + 20_000;
  while (!(leader = await cluster.leader())) {
    if (performance.now() > end) throw new Error("Orca elected no leader in 20 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  const url = cluster.nodeUrl(leader.id);
  const headers = { authorization: `Bearer ${token}` };
  const stats = async () =>
    await (await fetch(`${url}/status`, { headers })).json() as {
      fsyncs: number;
      entriesWritten: number;
      role: string;
    };
  return {
    name: "orca",
    async run(c, ms) {
      const before = await stats();
      const seq = new Array(c).fill(0);
      const result = await closedLoop(c, ms, (w) =>
        send(`${url}/kv/bench-${w}-${seq[w] % 1000}`, {
          method: "PUT",
          body: VALUE,
          headers: { ...headers, "x-client-id": `bench-${c}-${w}`, "x-client-seq": String(++seq[w]) },
        }));
      const after = await stats();
      if (after.role !== "leader") throw new Error(`Orca's leader ${leader!.id} lost leadership during the run`);
      return {
        ...result,
        perFsync: (after.entriesWritten - before.entriesWritten) / Math.max(1, after.fsyncs - before.fsyncs),
      };
    },
    stop: () => cluster.stop(),
  };
}

async function etcd(dir: string): Promise<Target> {
  const cluster = await startEtcd(await findEtcd(), dir);
  const leader = await cluster.leaderUrl();
  return {
    name: `etcd ${cluster.version}`,
    run(c, ms) {
      const seq = new Array(c).fill(0);
      return closedLoop(c, ms, (w) =>
        send(`${leader}/v3/kv/put`, {
          method: "POST",
          body: JSON.stringify({ key: btoa(`bench-${w}-${seq[w]++ % 1000}`), value: btoa(VALUE) }),
        }));
    },
    stop: () => cluster.stop(),
  };
}

function row(name: string, r: LoadResult): string {
  const errors = r.errors > 0 ? `  (${r.errors} errors)` : "";
  return `  ${name.padEnd(12)} c=${String(r.concurrency).padEnd(3)} ${r.rps.toFixed(0).padStart(7)} writes/s` +
    `  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms${errors}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: "5" }, "skip-etcd": { type: "boolean", default: false } },
  });
  const ms = Number(values.seconds) * 1000;
  const dir = await Deno.makeTempDir({ prefix: "orca-bench-raft-" });
  const targets: Target[] = [];
  try {
    // Both clusters run side by side and take turns at each concurrency, so a change in the machine's load
    // over the run falls on both alike.
    targets.push(await orca(`${dir}/orca`));
    if (!values["skip-etcd"]) targets.push(await etcd(`${dir}/etcd`));
    console.log(`Raft, 3 nodes on loopback, durable writes of ${VALUE.length} bytes, ${ms / 1000} s per run`);
    const results = new Map<string, (LoadResult & { perFsync?: number })[]>(targets.map((t) => [t.name, []]));
    for (const c of CONCURRENCY) {
      for (const t of targets) {
        const r = await t.run(c, ms);
        results.get(t.name)!.push(r);
        const perFsync = r.perFsync !== undefined ? `  ${r.perFsync.toFixed(1)} entries/fsync` : "";
        console.log(`${row(t.name, r)}${perFsync}`);
      }
    }
    if (targets.length === 2) {
      const [o, e] = targets.map((t) => results.get(t.name)!);
      console.log(`Orca / ${targets[1].name}:`);
      o.forEach((r, i) =>
        console.log(
          `  c=${String(r.concurrency).padEnd(3)} ${(r.rps / e[i].rps).toFixed(2)}x writes/s, ` +
            `p50 ${r.p50Ms.toFixed(2)} vs ${e[i].p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} vs ${
              e[i].p99Ms.toFixed(2)
            } ms`,
        )
      );
    }
  } finally {
    for (const t of targets) await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
