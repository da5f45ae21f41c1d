/** Properties of every plan, over random clusters and workloads (fast-check). */

import assert from "node:assert/strict";
import fc from "fast-check";
import { plan } from "./plan.ts";
import type { ClusterView, NodeView, Placement, Plan, WorkloadView } from "./types.ts";

const MiB = 2 ** 20;

const nodeArb = (i: number) =>
  fc.record({
    zone: fc.constantFrom("a", "b", "c"),
    memory: fc.integer({ min: 1, max: 16 }).map((g) => g * 1024 * MiB),
    cpu: fc.integer({ min: 1, max: 16 }).map((c) => c * 1000),
    gpus: fc.array(
      fc.record({
        vendor: fc.constantFrom("nvidia" as const, "amd" as const),
        vramMb: fc.constantFrom(24000, 40960, 81920),
        count: fc.integer({ min: 1, max: 4 }),
      }),
      { maxLength: 2 },
    ),
    runtimes: fc.constantFrom(["wasm", "container"] as const, ["container"] as const, ["wasm"] as const),
    healthy: fc.boolean().map((b) => b || i % 3 !== 0),
    draining: fc.boolean().map((b) => b && i % 4 === 0),
    role: fc.constantFrom("web", "gpu"),
  }).map((n): NodeView => ({
    id: `n${i}`,
    zone: n.zone,
    labels: { role: n.role },
    capacity: { memory: n.memory, cpuMillis: n.cpu },
    gpus: n.gpus,
    runtimes: [...n.runtimes],
    images: [],
    healthy: n.healthy,
    draining: n.draining,
  }));

const workloadArb = (i: number, nodes: number) =>
  fc.record({
    replicas: fc.integer({ min: 0, max: 4 }),
    runtimes: fc.constantFrom(["wasm", "container"] as const, ["container"] as const, ["wasm"] as const),
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
    pin: fc.option(fc.integer({ min: 0, max: nodes }), { nil: undefined, freq: 5 }),
    role: fc.option(fc.constantFrom("web", "gpu"), { nil: undefined, freq: 3 }),
  }).map((w): WorkloadView => ({
    id: `p${i % 3}/w${i}`,
    project: `p${i % 3}`,
    replicas: w.replicas,
    runtimes: [...w.runtimes],
    memory: w.memory,
    cpuMillis: w.cpu,
    ...(w.gpu &&
      { gpu: { vendor: w.gpu.vendor, count: w.gpu.count, ...(w.gpu.vramMin && { vramMin: w.gpu.vramMin }) } }),
    placement: { ...(w.pin !== undefined && { node: `n${w.pin}` }), labels: w.role ? { role: w.role } : {} },
  }));

const scenarioArb = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.tuple(
    fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i))),
    fc.integer({ min: 1, max: 10 }).chain((m) => fc.tuple(...Array.from({ length: m }, (_, i) => workloadArb(i, n)))),
  )
);

/** What runs after the plan is carried out. */
function after(view: ClusterView, p: Plan): Placement[] {
  const gone = new Set([...p.stop, ...p.migrate.map((m) => m.from)]);
  return [...view.placements.filter((x) => !gone.has(x)), ...p.place, ...p.migrate.map((m) => m.to)];
}

function checkInvariants(view: ClusterView, workloads: WorkloadView[], p: Plan) {
  const nodes = new Map(view.nodes.map((n) => [n.id, n]));
  const wl = new Map(workloads.map((w) => [w.id, w]));
  const running = after(view, p);
  const used = new Map<string, { memory: number; cpu: number; gpus: number[] }>();
  for (const x of running) {
    const n = nodes.get(x.node)!;
    const w = wl.get(x.workload)!;
    const u = used.get(n.id) ?? { memory: 0, cpu: 0, gpus: n.gpus.map(() => 0) };
    u.memory += w.memory > 0 ? w.memory : x.runtime === "wasm" ? 4 * MiB : 0;
    u.cpu += w.cpuMillis;
    if (x.gpu) u.gpus[x.gpu.group] += x.gpu.count;
    used.set(n.id, u);
  }
  for (const [id, u] of used) {
    const n = nodes.get(id)!;
    assert.ok(u.memory <= n.capacity.memory, `${id} memory over-committed`);
    assert.ok(u.cpu <= n.capacity.cpuMillis, `${id} cpu over-committed`);
    u.gpus.forEach((g, i) => assert.ok(g <= n.gpus[i].count, `${id} GPU group ${i} double-allocated`));
  }
  for (const x of [...p.place, ...p.migrate.map((m) => m.to)]) {
    const n = nodes.get(x.node)!;
    const w = wl.get(x.workload)!;
    assert.ok(n.healthy && !n.draining, `${x.workload} placed on unusable ${n.id}`);
    if (w.placement.node) assert.equal(n.id, w.placement.node, "placement.node is exact");
    for (const [k, v] of Object.entries(w.placement.labels)) assert.equal(n.labels[k], v, `label ${k}`);
    assert.ok(n.runtimes.includes(x.runtime) && w.runtimes.includes(x.runtime), "runtime available and supported");
    if (w.gpu) {
      const g = n.gpus[x.gpu!.group];
      assert.equal(g.vendor, w.gpu.vendor);
      assert.ok((g.vramMb ?? 0) >= (w.gpu.vramMin ?? 0));
      assert.equal(x.gpu!.count, w.gpu.count);
    }
  }
  // Every workload ends with its replicas, or says why not.
  for (const w of workloads) {
    const have = running.filter((x) => x.workload === w.id).length;
    const missing = p.unplaced.filter((u) =>
      u.workload === w.id && !u.reasons[0]?.startsWith("cannot move off")
    ).length;
    assert.equal(have + missing, w.replicas, `${w.id}: ${have} running + ${missing} unplaced != ${w.replicas}`);
  }
}

Deno.test("property: no over-commit, constraints honoured, GPUs not double-allocated, replicas accounted for", () => {
  fc.assert(
    fc.property(scenarioArb, ([nodes, workloads]) => {
      const view: ClusterView = { nodes, placements: [] };
      const p = plan(view, workloads);
      checkInvariants(view, workloads, p);
      // Again on the result: still valid, and nothing left to do but what could not be placed.
      const second = plan({ nodes, placements: after(view, p) }, workloads);
      checkInvariants({ nodes, placements: after(view, p) }, workloads, second);
    }),
    { numRuns: 300 },
  );
});

Deno.test("property: the same input gives the same plan", () => {
  fc.assert(
    fc.property(scenarioArb, ([nodes, workloads]) => {
      const view = { nodes, placements: [] };
      assert.deepEqual(plan(view, workloads), plan(view, workloads));
      assert.deepEqual(plan(view, workloads, { explain: true }).place, plan(view, workloads).place);
    }),
    { numRuns: 100 },
  );
});

Deno.test("property: replicas spread as evenly as the zones allow", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 12 }),
      (zones, perZone, replicas) => {
        const nodes: NodeView[] = [];
        for (let z = 0; z < zones; z++) {
          for (let i = 0; i < perZone; i++) {
            nodes.push({
              id: `z${z}-n${i}`,
              zone: `z${z}`,
              labels: {},
              capacity: { memory: 64 * 1024 * MiB, cpuMillis: 64000 },
              gpus: [],
              runtimes: ["container"],
              images: [],
              healthy: true,
              draining: false,
            });
          }
        }
        const w: WorkloadView = {
          id: "p/w",
          project: "p",
          replicas,
          runtimes: ["container"],
          memory: 64 * MiB,
          cpuMillis: 100,
          placement: { labels: {} },
        };
        const p = plan({ nodes, placements: [] }, [w]);
        const byZone = new Map<string, number>();
        const byNode = new Map<string, number>();
        for (const x of p.place) {
          const zone = x.node.split("-")[0];
          byZone.set(zone, (byZone.get(zone) ?? 0) + 1);
          byNode.set(x.node, (byNode.get(x.node) ?? 0) + 1);
        }
        const zoneCounts = Array.from({ length: zones }, (_, z) => byZone.get(`z${z}`) ?? 0);
        assert.ok(Math.max(...zoneCounts) - Math.min(...zoneCounts) <= 1, `zones ${zoneCounts}`);
        const nodeCounts = nodes.map((n) => byNode.get(n.id) ?? 0);
        assert.ok(Math.max(...nodeCounts) - Math.min(...nodeCounts) <= 1, `nodes ${nodeCounts}`);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("property: draining moves everything that fits elsewhere", () => {
  fc.assert(
    fc.property(scenarioArb, ([nodes, workloads]) => {
      const healthy = nodes.map((n) => ({ ...n, draining: false, healthy: true }));
      const first = plan({ nodes: healthy, placements: [] }, workloads);
      const placed = first.place;
      const drained = healthy.map((n, i) => i === 0 ? { ...n, draining: true } : n);
      const p = plan({ nodes: drained, placements: placed }, workloads);
      const onDrained = after({ nodes: drained, placements: placed }, p).filter((x) => x.node === drained[0].id);
      for (const x of onDrained) {
        assert.ok(
          p.unplaced.some((u) =>
            u.workload === x.workload && u.replica === x.replica && u.reasons[0].startsWith("cannot move off")
          ),
          `${x.workload}#${x.replica} left on the draining node without a reason`,
        );
      }
      checkInvariants({ nodes: drained, placements: placed }, workloads, p);
    }),
    { numRuns: 200 },
  );
});
