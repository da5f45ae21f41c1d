/**
 * `deno task bench:raft`: durable writes per second and latency (p50, p99) of
 * a 3-node Orca Raft cluster (the real server processes of raft/server.ts,
 * SQLite with synchronous=FULL, the WebSocket transport) against a 3-member
 * etcd, on this machine, with one load generator (bench/raft_load.ts): closed
 * loops of 1, 16 and 64 clients writing to the leader. Every write is
 * acknowledged only once it is on disk on a majority. Also prints how many
 * entries Orca's leader stored per fsync.
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

interface Run {
  results: LoadResult[];
  /** Per concurrency, Orca only: entries the leader stored per fsync. */
  perFsync?: number[];
}

async function benchOrca(dir: string, seconds: number): Promise<Run> {
  const token = crypto.randomUUID();
  const cluster = await ProcessCluster.start({ size: 3, dir, token, distinctHosts: true });
  try {
    let leader: { id: string } | undefined;
    const end = performance.now() + 20_000;
    while (!(leader = await cluster.leader())) {
      if (performance.now() > end) throw new Error("Orca elected no leader in 20 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const statusUrl = new URL(`/status`, cluster.nodeUrl(leader.id)).href;
    const headers = { authorization: `Bearer ${token}` };
    const stats = async () =>
      await (await fetch(statusUrl, { headers })).json() as { fsyncs: number; entriesWritten: number; role: string };
    const results: LoadResult[] = [];
    const perFsync: number[] = [];
    for (const c of CONCURRENCY) {
      const before = await stats();
      const seq = new Array(c).fill(0);
      results.push(
        await closedLoop(
          c,
          seconds * 1000,
          (w) =>
            send(`${cluster.nodeUrl(leader!.id)}/kv/bench-${w}-${seq[w] % 1000}`, {
              method: "PUT",
              body: VALUE,
              headers: { ...headers, "x-client-id": `bench-${c}-${w}`, "x-client-seq": String(++seq[w]) },
            }),
        ),
      );
      const after = await stats();
      if (after.role !== "leader") throw new Error(`Orca's leader ${leader.id} lost leadership during the run`);
      perFsync.push((after.entriesWritten - before.entriesWritten) / Math.max(1, after.fsyncs - before.fsyncs));
    }
    return { results, perFsync };
  } finally {
    await cluster.stop();
  }
}

async function benchEtcd(dir: string, seconds: number): Promise<Run & { version: string }> {
  const etcd = await startEtcd(await findEtcd(), dir);
  try {
    const leader = await etcd.leaderUrl();
    const b64 = (s: string) => btoa(s);
    const results: LoadResult[] = [];
    for (const c of CONCURRENCY) {
      const seq = new Array(c).fill(0);
      results.push(
        await closedLoop(c, seconds * 1000, (w) =>
          send(`${leader}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: b64(`bench-${w}-${seq[w]++ % 1000}`), value: b64(VALUE) }),
          })),
      );
    }
    return { results, version: etcd.version };
  } finally {
    await etcd.stop();
  }
}

function row(name: string, r: LoadResult): string {
  const errors = r.errors > 0 ? `  (${r.errors} errors)` : "";
  return `  ${name.padEnd(6)} c=${String(r.concurrency).padEnd(3)} ${r.rps.toFixed(0).padStart(7)} writes/s` +
    `  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms${errors}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: "5" }, "skip-etcd": { type: "boolean", default: false } },
  });
  const seconds = Number(values.seconds);
  const dir = await Deno.makeTempDir({ prefix: "orca-bench-raft-" });
  try {
    console.log(`Raft, 3 nodes on loopback, durable writes of ${VALUE.length} bytes, ${seconds} s per concurrency`);
    const orca = await benchOrca(`${dir}/orca`, seconds);
    orca.results.forEach((r, i) => console.log(`${row("orca", r)}  ${orca.perFsync![i].toFixed(1)} entries/fsync`));
    if (!values["skip-etcd"]) {
      const etcd = await benchEtcd(`${dir}/etcd`, seconds);
      etcd.results.forEach((r) => console.log(row("etcd", r)));
      console.log(`Orca / etcd ${etcd.version}:`);
      orca.results.forEach((o, i) => {
        const e = etcd.results[i];
        console.log(
          `  c=${String(o.concurrency).padEnd(3)} ${(o.rps / e.rps).toFixed(2)}x writes/s, ` +
            `p50 ${o.p50Ms.toFixed(2)} vs ${e.p50Ms.toFixed(2)} ms, p99 ${o.p99Ms.toFixed(2)} vs ${
              e.p99Ms.toFixed(2)
            } ms`,
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
