/**
 * For the tests: random clusters (fast-check) and an oracle that checks a
 * plan against the rules written out again from scratch, sharing no code
 * with the planner.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { ClusterView, NodeView, Placement, Plan, WorkloadView } from "./types.ts";

export const MiB = 2 ** 20, GiB = 2 ** 30;
const WASM_DEFAULT = 4 * MiB, CONTAINER_DEFAULT = 256 * MiB;

const runtimesArb = fc.constantFrom(["wasm", "container"] as const, ["container"] as const, ["wasm"] as const);

export const nodeArb = (i: number): fc.Arbitrary<NodeView> =>
  fc.record({
    zone: fc.constantFrom("a", "b", "c", undefined),
    named: fc.boolean(),
    memory: fc.integer({ min: 1, max: 16 }).map((g) => g * GiB),
    cpu: fc.integer({ min: 1, max: 16 }).map((c) => c * 1000),
    reserved: fc.option(fc.record({ memory: fc.constantFrom(0, 512 * MiB), cpuMillis: fc.constantFrom(0, 500) })),
    gpus: fc.array(
      fc.record({
        vendor: fc.constantFrom("nvidia" as const, "amd" as const),
        vramMb: fc.constantFrom(24000, 40960, 81920),
        count: fc.integer({ min: 1, max: 4 }),
      }),
      { maxLength: 2 },
    ),
    runtimes: runtimesArb,
    images: fc.subarray(["img-a", "img-b"]),
    healthy: fc.boolean().map((b) => b || i % 3 !== 0),
    draining: fc.boolean().map((b) => b && i % 4 === 0),
    role: fc.constantFrom("web", "gpu"),
  }).map((n) => ({
    id: `n${i}`,
    ...(n.named && { name: `name-${i}` }),
    ...(n.zone !== undefined && { zone: n.zone }),
    labels: { role: n.role },
    capacity: { memory: n.memory, cpuMillis: n.cpu },
    ...(n.reserved && { reserved: n.reserved }),
    gpus: n.gpus,
    runtimes: [...n.runtimes],
    images: n.images,
    healthy: n.healthy,
    draining: n.draining,
  }));

export const workloadArb = (i: number, nodes: number): fc.Arbitrary<WorkloadView> =>
  fc.record({
    replicas: fc.integer({ min: 0, max: 4 }),
    runtimes: runtimesArb,
    memory: fc.integer({ min: 0, max: 4096 }).map((m) => m * MiB),
    cpu: fc.integer({ min: 0, max: 4000 }),
    gpu: fc.option(
      fc.record({
        vendor: fc.constantFrom("nvidia" as const, "amd" as const),
        count: fc.integer({ min: 1, max: 3 }),
        vramMin: fc.option(fc.constantFrom(30000, 80000), { nil: undefined }),
      }),
      { nil: undefined, freq: 4 },
    ),
    pin: fc.option(fc.constantFrom(...Array.from({ length: nodes + 1 }, (_, k) => [`n${k}`, `name-${k}`]).flat()), {
      nil: undefined,
      freq: 5,
    }),
    role: fc.option(fc.constantFrom("web", "gpu"), { nil: undefined, freq: 3 }),
    image: fc.option(fc.constantFrom("img-a", "img-b"), { nil: undefined }),
  }).map((w) => ({
    id: `p${i % 3}/w${i}`,
    project: `p${i % 3}`,
    replicas: w.replicas,
    runtimes: [...w.runtimes],
    memory: w.memory,
    cpuMillis: w.cpu,
    ...(w.gpu && {
      gpu: { vendor: w.gpu.vendor, count: w.gpu.count, ...(w.gpu.vramMin && { vramMin: w.gpu.vramMin }) },
    }),
    placement: {
      ...(w.pin !== undefined && { node: w.pin }),
      labels: w.role ? { role: w.role } : {} as Record<string, string>,
    },
    ...(w.image !== undefined && { image: w.image }),
  }));

export const clusterArb = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.tuple(
    fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i))),
    fc.integer({ min: 1, max: 10 }).chain((m) => fc.tuple(...Array.from({ length: m }, (_, i) => workloadArb(i, n)))),
  )
);

/** Whatever may run now: known and unknown workloads and nodes, any runtime, GPUs or not. */
export const placementsArb = (nodes: readonly NodeView[], workloads: readonly WorkloadView[]) =>
  fc.array(
    fc.record({
      workload: fc.constantFrom(...workloads.map((w) => w.id), "gone/old"),
      replica: fc.integer({ min: 0, max: 5 }),
      node: fc.constantFrom(...nodes.map((n) => n.id), "lost"),
      runtime: fc.constantFrom("wasm" as const, "container" as const),
      gpu: fc.option(fc.record({ group: fc.integer({ min: 0, max: 1 }), count: fc.integer({ min: 1, max: 3 }) }), {
        nil: undefined,
        freq: 3,
      }),
    }).map(({ gpu, ...p }): Placement => gpu ? { ...p, gpu: { group: gpu.group, count: gpu.count } } : p),
    { maxLength: 12 },
  );

/** What runs once the plan is carried out (replicas that could not move stay where they were). */
export function after(view: ClusterView, p: Plan): Placement[] {
  const gone = new Set([...p.stops.map((s) => s.placement), ...p.migrations.map((m) => m.from)]);
  return [...view.placements.filter((x) => !gone.has(x)), ...p.placements, ...p.migrations.map((m) => m.to)];
}

interface Usage {
  memory: number;
  cpu: number;
  gpus: number[];
}

function memoryOf(w: WorkloadView, runtime: Placement["runtime"]): number {
  return w.memory > 0 ? w.memory : runtime === "wasm" ? WASM_DEFAULT : CONTAINER_DEFAULT;
}

function usage(nodes: readonly NodeView[], workloads: readonly WorkloadView[], running: readonly Placement[]) {
  const wl = new Map(workloads.map((w) => [w.id, w]));
  const used = new Map<string, Usage>(nodes.map((n) => [n.id, {
    memory: n.reserved?.memory ?? 0,
    cpu: n.reserved?.cpuMillis ?? 0,
    gpus: n.gpus.map((_, i) => n.reserved?.gpus?.[i] ?? 0),
  }]));
  for (const x of running) {
    const u = used.get(x.node);
    const w = wl.get(x.workload);
    if (!u || !w) continue;
    u.memory += memoryOf(w, x.runtime);
    u.cpu += w.cpuMillis;
    if (x.gpu && x.gpu.group < u.gpus.length) u.gpus[x.gpu.group] += x.gpu.count;
  }
  return used;
}

/** Could one more replica of `w` run on `n` as it ends up? The rules, written out once more. */
function couldHost(n: NodeView, w: WorkloadView, u: Usage): boolean {
  if (!n.healthy || n.draining) return false;
  if (w.placement.node !== undefined && w.placement.node !== n.id && w.placement.node !== n.name) return false;
  if (Object.entries(w.placement.labels).some(([k, v]) => n.labels[k] !== v)) return false;
  const wasm = !w.gpu && w.runtimes.includes("wasm") && n.runtimes.includes("wasm");
  const container = w.runtimes.includes("container") && n.runtimes.includes("container");
  if (!wasm && !container) return false;
  const memory = memoryOf(w, wasm ? "wasm" : "container");
  if (u.memory + memory > n.capacity.memory || u.cpu + w.cpuMillis > n.capacity.cpuMillis) return false;
  const g = w.gpu;
  return !g ||
    n.gpus.some((x, i) =>
      x.vendor === g.vendor && (x.vramMb ?? 0) >= (g.vramMin ?? 0) && x.count - u.gpus[i] >= g.count
    );
}

/** Every rule a plan must keep, checked on what runs once it is carried out. */
export function checkPlan(view: ClusterView, workloads: readonly WorkloadView[], p: Plan): void {
  const nodes = new Map(view.nodes.map((n) => [n.id, n]));
  const wl = new Map(workloads.map((w) => [w.id, w]));
  const running = after(view, p);
  const before = usage(view.nodes, workloads, view.placements);
  const end = usage(view.nodes, workloads, running);
  const targets = [...p.placements, ...p.migrations.map((m) => m.to)];

  for (const x of targets) {
    const n = nodes.get(x.node)!;
    const w = wl.get(x.workload)!;
    assert.ok(n, `${x.workload} placed on unknown node ${x.node}`);
    assert.ok(n.healthy && !n.draining, `${x.workload} placed on unusable ${n.id}`);
    if (w.placement.node !== undefined) assert.ok([n.id, n.name].includes(w.placement.node), "placement.node exact");
    for (const [k, v] of Object.entries(w.placement.labels)) assert.equal(n.labels[k], v, `label ${k}`);
    assert.ok(n.runtimes.includes(x.runtime) && w.runtimes.includes(x.runtime), "runtime on node and workload");
    if (x.runtime === "container" && !w.gpu && w.runtimes.includes("wasm")) {
      assert.ok(!n.runtimes.includes("wasm"), `${x.workload} runs as a container where Wasm was possible`);
    }
    if (w.gpu) {
      assert.ok(x.gpu, `${x.workload} needs GPUs`);
      const g = n.gpus[x.gpu.group];
      assert.equal(g.vendor, w.gpu.vendor);
      assert.ok((g.vramMb ?? 0) >= (w.gpu.vramMin ?? 0), "vram_min");
      assert.equal(x.gpu.count, w.gpu.count);
    } else assert.equal(x.gpu, undefined);
  }
  // No over-commit in any resource, GPUs included; what was over-committed already only shrinks.
  for (const n of view.nodes) {
    const b = before.get(n.id)!, e = end.get(n.id)!;
    const check = (what: string, cap: number, was: number, is: number) =>
      assert.ok(is <= cap || (was > cap && is <= was), `${n.id} ${what} over-committed: ${is} > ${cap}`);
    check("memory", n.capacity.memory, b.memory, e.memory);
    check("cpu", n.capacity.cpuMillis, b.cpu, e.cpu);
    n.gpus.forEach((g, i) => check(`GPU group ${i}`, g.count, b.gpus[i], e.gpus[i]));
  }
  for (const w of workloads) {
    const mine = running.filter((x) => x.workload === w.id);
    const waiting = p.unplaced.filter((u) => u.workload === w.id && !u.from).length;
    assert.equal(mine.length + waiting, w.replicas, `${w.id}: ${mine.length} running + ${waiting} unplaced`);
    assert.equal(new Set(mine.map((x) => x.replica)).size, mine.length, `${w.id}: replica indices repeat`);
  }
  // What could not be placed (or moved) fits nowhere, even once the plan is carried out (while replicas
  // that migrate still hold their old room: a migration starts the new replica before it stops the old).
  const moving = usage(view.nodes, workloads, [...running, ...p.migrations.map((m) => m.from)]);
  for (const u of p.unplaced) {
    const w = wl.get(u.workload)!;
    for (const n of view.nodes) {
      assert.ok(!couldHost(n, w, moving.get(n.id)!), `${u.workload}#${u.replica} unplaced, but ${n.id} has room`);
    }
    assert.ok(u.reasons.length > 0, "unplaced without reasons");
  }
  assert.deepEqual(p.problems, [], "well-formed input has no problems");
}
