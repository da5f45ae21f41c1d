/**
 * `deno task bench scheduler`: placements/s for 10,000 services on 1,000
 * nodes (mixed Wasm/containers, 5% GPU), single-threaded, and packing
 * quality: nodes used against the lower bound (total demand / node capacity).
 * Deterministic: one seeded generator.
 */

import { plan } from "../scheduler/mod.ts";
import type { NodeView, WorkloadView } from "../scheduler/mod.ts";

const GiB = 2 ** 30, MiB = 2 ** 20;

/** mulberry32: a small seeded PRNG, so the cluster is the same every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generate(seed: number, nodeCount: number, serviceCount: number) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const nodes: NodeView[] = Array.from({ length: nodeCount }, (_, i) => ({
    id: `node-${String(i).padStart(4, "0")}`,
    zone: `zone-${i % 10}`,
    labels: { zone: `zone-${i % 10}` },
    capacity: { memory: 64 * GiB, cpuMillis: 32_000 },
    // One node in ten has 8 GPUs, in every zone.
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
    };
  });
  return { nodes, workloads };
}

export function benchScheduler(): string[] {
  const { nodes, workloads } = generate(42, 1000, 10_000);
  plan({ nodes: nodes.slice(0, 50), placements: [] }, workloads.slice(0, 500)); // warm up the JIT
  const t0 = performance.now();
  const p = plan({ nodes, placements: [] }, workloads);
  const ms = performance.now() - t0;
  const placements = p.place.length;
  // The lower bound counts what was placed: total demand over one node's capacity.
  const byId = new Map(workloads.map((w) => [w.id, w]));
  const demand = p.place.reduce((acc, x) => {
    const w = byId.get(x.workload)!;
    return { memory: acc.memory + (w.memory > 0 ? w.memory : 4 * MiB), cpu: acc.cpu + w.cpuMillis };
  }, { memory: 0, cpu: 0 });
  const lowerBound = Math.ceil(Math.max(demand.memory / (64 * GiB), demand.cpu / 32_000));
  const used = new Set(p.place.map((x) => x.node)).size;
  return [
    `scheduler: ${workloads.length} services (${placements} replicas placed, ${p.unplaced.length} unplaced) on ${nodes.length} nodes ` +
    `in ${ms.toFixed(0)} ms: ${(placements / ms * 1000).toFixed(0)} placements/s single-threaded ` +
    `(goal >= 20,000; Nomad's C1M anchor: 3,750 containers/s across a cluster, ratio ${
      (placements / ms * 1000 / 3750).toFixed(1)
    }x)`,
    `scheduler: nodes used ${used} vs lower bound ${lowerBound} (total demand / node capacity): ${
      (used / lowerBound).toFixed(2)
    }x (goal <= 1.1x)`,
  ];
}

if (import.meta.main) { for (const line of benchScheduler()) console.log(line); }
