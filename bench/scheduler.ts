/**
 * `deno task bench:scheduler [seed]` (also a suite of `deno task bench`):
 * placements/s for 10,000 services on 1,000 nodes (mixed Wasm/containers, 5%
 * GPU), single-threaded, and packing quality: nodes used against the lower
 * bound (total demand / node capacity, in the scarcer resource). Then the
 * steady state: re-planning the placed cluster (nothing to do) and draining
 * ten nodes. The cluster comes from one seeded generator, so every run plans
 * the same input.
 */

import { type ClusterView, type NodeView, type Placement, plan, type WorkloadView } from "../scheduler/mod.ts";

const GiB = 2 ** 30, MiB = 2 ** 20;
const NODE = { memory: 64 * GiB, cpuMillis: 32_000 };
/** Nomad's C1M challenge: one million containers across 5,000 hosts in under 5 minutes. */
const C1M_PER_SECOND = 3_750;

/** mulberry32: a small seeded PRNG, so the cluster is the same every run. */
export function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 1,000 identical nodes in 10 zones, one in ten with 8 H100s; services: 5%
 * GPU (1 GPU, 8-16 GiB, 2-4 cores), 45% Wasm (4-64 MiB, 0.01-0.1 core), 50%
 * containers (256 MiB-4 GiB, 0.25-2 cores), 1-3 replicas, 200 projects.
 */
export function generate(seed: number, nodeCount: number, serviceCount: number) {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const nodes: NodeView[] = Array.from({ length: nodeCount }, (_, i) => ({
    id: `node-${String(i).padStart(4, "0")}`,
    zone: `zone-${i % 10}`,
    labels: { zone: `zone-${i % 10}` },
    capacity: NODE,
    gpus: Math.floor(i / 10) % 10 === 0 ? [{ vendor: "nvidia" as const, model: "H100", vramMb: 81920, count: 8 }] : [],
    runtimes: ["wasm", "container"],
    images: [],
    healthy: true,
    draining: false,
  }));
  const workloads: WorkloadView[] = Array.from({ length: serviceCount }, (_, i) => {
    const kind = i % 20 === 0 ? 0 : 0.05 + rand() * 0.95; // exactly 5% GPU services
    const project = `p${Math.floor(rand() * 200)}`;
    const base = { id: `${project}/s${i}`, project, replicas: 1 + Math.floor(rand() * 3), placement: { labels: {} } };
    if (kind < 0.05) {
      return {
        ...base,
        replicas: 1,
        runtimes: ["container"],
        memory: pick([8, 12, 16]) * GiB,
        cpuMillis: pick([2000, 4000]),
        gpu: { vendor: "nvidia", count: 1 },
        image: `registry.local/${project}/s${i}:1`,
      };
    }
    if (kind < 0.5) {
      return { ...base, runtimes: ["wasm"], memory: pick([4, 16, 64]) * MiB, cpuMillis: pick([10, 50, 100]) };
    }
    return {
      ...base,
      runtimes: ["container"],
      memory: pick([256, 512, 1024, 2048, 4096]) * MiB,
      cpuMillis: pick([250, 500, 1000, 2000]),
      image: `registry.local/${project}/s${i}:1`,
    };
  });
  return { nodes, workloads };
}

/** Nodes the placed replicas need at the very least: total demand over one node, in the scarcer resource. */
function lowerBound(placed: readonly Placement[], workloads: readonly WorkloadView[]): number {
  const byId = new Map(workloads.map((w) => [w.id, w]));
  let memory = 0, cpu = 0;
  for (const p of placed) {
    const w = byId.get(p.workload)!;
    memory += w.memory;
    cpu += w.cpuMillis;
  }
  return Math.ceil(Math.max(memory / NODE.memory, cpu / NODE.cpuMillis));
}

/** The result of `f` and its median time over `runs` calls, in ms. */
function timed<T>(f: () => T, runs: number): [T, number] {
  const times: number[] = [];
  let result = f(); // once untimed: the JIT warms up on this very input
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = f();
    times.push(performance.now() - t0);
  }
  return [result, times.sort((a, b) => a - b)[Math.floor(runs / 2)]];
}

export function benchScheduler(seed = 42, runs = 5): string[] {
  const { nodes, workloads } = generate(seed, 1000, 10_000);
  const empty: ClusterView = { nodes, placements: [] };
  const [p, ms] = timed(() => plan(empty, workloads), runs);
  const placed = p.placements.length;
  const rate = placed / ms * 1000;
  const used = new Set(p.placements.map((x) => x.node)).size;
  const bound = lowerBound(p.placements, workloads);
  const gpu = p.placements.filter((x) => x.gpu).length;
  const wasm = p.placements.filter((x) => x.runtime === "wasm").length;

  const running: ClusterView = { nodes, placements: p.placements };
  const [steady, steadyMs] = timed(() => plan(running, workloads), runs);
  const idle = steady.placements.length + steady.migrations.length + steady.stops.length;
  const drained = new Set(nodes.filter((n) => n.gpus.length === 0).slice(0, 10).map((n) => n.id));
  const draining: ClusterView = {
    nodes: nodes.map((n) => drained.has(n.id) ? { ...n, draining: true } : n),
    placements: p.placements,
  };
  const [drain, drainMs] = timed(() => plan(draining, workloads), runs);
  const onDrained = p.placements.filter((x) => drained.has(x.node)).length;

  return [
    `scheduler (seed ${seed}): ${workloads.length} services, ${placed} replicas placed (${wasm} Wasm, ${gpu} GPU, ` +
    `${p.unplaced.length} unplaced) on ${nodes.length} nodes in ${ms.toFixed(0)} ms (median of ${runs}): ` +
    `${rate.toFixed(0)} placements/s single-threaded (goal >= 20,000)`,
    `scheduler: Nomad's C1M anchor: ${C1M_PER_SECOND.toLocaleString("en-US")} containers/s across a cluster; ` +
    `this is ${(rate / C1M_PER_SECOND).toFixed(1)}x that on one thread`,
    `scheduler: nodes used ${used} vs lower bound ${bound} (total demand / node capacity): ` +
    `${(used / bound).toFixed(2)}x (goal <= 1.1x)`,
    `scheduler: re-plan of the placed cluster: ${idle} changes in ${steadyMs.toFixed(0)} ms; ` +
    `drain 10 nodes: ${drain.migrations.length} of ${onDrained} replicas migrated, ${drain.unplaced.length} unplaced, ` +
    `in ${drainMs.toFixed(0)} ms (medians of ${runs})`,
  ];
}

if (import.meta.main) {
  const seed = Number(Deno.args[0] ?? 42);
  for (const line of benchScheduler(Number.isInteger(seed) ? seed : 42)) console.log(line);
}
