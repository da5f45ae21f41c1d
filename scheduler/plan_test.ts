/** Properties of every plan, over random clusters and workloads (fast-check). */

import assert from "node:assert/strict";
import fc from "fast-check";
import { explainPlan } from "./explain.ts";
import { plan } from "./plan.ts";
import type { ClusterView, NodeView, Plan, WorkloadView } from "./types.ts";
import { after, checkPlan, clusterArb, GiB, MiB, nodeArb, placementsArb, workloadArb } from "./_test_utils.ts";

const withPlacements = clusterArb.chain(([nodes, workloads]) =>
  placementsArb(nodes, workloads).map((placements) => ({ view: { nodes, placements }, workloads }))
);

/** The plan without its explanations (which only explain mode fills). */
const decisions = ({ explanations: _, ...rest }: Plan) => rest;

Deno.test("property: no over-commit, every constraint honoured, GPUs never double-allocated (fresh cluster)", () => {
  fc.assert(
    fc.property(clusterArb, ([nodes, workloads]) => {
      const view: ClusterView = { nodes, placements: [] };
      checkPlan(view, workloads, plan(view, workloads));
    }),
    { numRuns: 400 },
  );
});

Deno.test("property: the same rules hold whatever runs now (lost nodes, removed workloads, stale GPUs, duplicates)", () => {
  fc.assert(
    fc.property(withPlacements, ({ view, workloads }) => checkPlan(view, workloads, plan(view, workloads))),
    { numRuns: 400 },
  );
});

Deno.test("property: re-planning a carried-out plan changes nothing it did not report as pending", () => {
  fc.assert(
    fc.property(withPlacements, ({ view, workloads }) => {
      const first = plan(view, workloads);
      const second = plan({ nodes: view.nodes, placements: after(view, first) }, workloads);
      // Only replicas the first plan could not place yet may move on: room that migrating
      // replicas held is free once they have moved.
      const pending = new Set(first.unplaced.map((u) => `${u.workload}#${u.replica}`));
      const acted = [...second.placements, ...second.migrations.map((m) => m.to)];
      for (const x of acted) assert.ok(pending.has(`${x.workload}#${x.replica}`), `${x.workload}#${x.replica} again`);
      assert.deepEqual(second.stops, []);
      if (pending.size === 0) assert.deepEqual([second.placements, second.migrations, second.unplaced], [[], [], []]);
    }),
    { numRuns: 400 },
  );
});

Deno.test("property: the same input gives the same plan, in any order of its lists, explained or not", () => {
  const shuffled = withPlacements.chain(({ view, workloads }) =>
    fc.tuple(
      fc.constant({ view, workloads }),
      fc.shuffledSubarray([...view.nodes], { minLength: view.nodes.length }),
      fc.shuffledSubarray([...view.placements], { minLength: view.placements.length }),
      fc.shuffledSubarray([...workloads], { minLength: workloads.length }),
    )
  );
  fc.assert(
    fc.property(shuffled, ([{ view, workloads }, nodes, placements, ws]) => {
      const p = plan(view, workloads);
      assert.deepEqual(plan(view, workloads), p);
      assert.deepEqual(decisions(plan({ nodes, placements }, ws)), decisions(p));
      assert.deepEqual(decisions(explainPlan(view, workloads).plan), decisions(p));
    }),
    { numRuns: 300 },
  );
});

function evenCluster(zones: number, perZone: number): NodeView[] {
  return Array.from({ length: zones * perZone }, (_, i) => ({
    id: `z${Math.floor(i / perZone)}-n${i % perZone}`,
    zone: `z${Math.floor(i / perZone)}`,
    labels: {},
    capacity: { memory: 64 * GiB, cpuMillis: 64_000 },
    gpus: [],
    runtimes: ["container"],
    images: [],
    healthy: true,
    draining: false,
  }));
}

function assertEven(nodes: readonly NodeView[], running: ClusterView["placements"], zones: number) {
  const count = (key: (node: string) => string, keys: string[]) =>
    keys.map((k) => running.filter((x) => key(x.node) === k).length);
  const zoneCounts = count((n) => n.split("-")[0], Array.from({ length: zones }, (_, z) => `z${z}`));
  const nodeCounts = count((n) => n, nodes.map((n) => n.id));
  assert.ok(Math.max(...zoneCounts) - Math.min(...zoneCounts) <= 1, `zones ${zoneCounts}`);
  assert.ok(Math.max(...nodeCounts) - Math.min(...nodeCounts) <= 1, `nodes ${nodeCounts}`);
}

Deno.test("property: replicas spread as evenly as the zones allow, through scaling up and down", () => {
  const sizes = fc.tuple(
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 3 }),
    fc.array(fc.integer({ min: 0, max: 14 }), { minLength: 1, maxLength: 4 }),
  );
  fc.assert(
    fc.property(sizes, ([zones, perZone, steps]) => {
      const nodes = evenCluster(zones, perZone);
      let view: ClusterView = { nodes, placements: [] };
      for (const replicas of steps) {
        const w: WorkloadView = {
          id: "p/w",
          project: "p",
          replicas,
          runtimes: ["container"],
          memory: 64 * MiB,
          cpuMillis: 100,
          placement: { labels: {} },
        };
        const p = plan(view, [w]);
        view = { nodes, placements: after(view, p) };
        assert.equal(view.placements.length, replicas);
        assertEven(nodes, view.placements, zones);
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("property: each replica goes to a node with the fewest of its replicas in the zone, then on the node", () => {
  fc.assert(
    fc.property(withPlacements, ({ view, workloads }) => {
      const { plan: p } = explainPlan(view, workloads);
      for (const replicas of Object.values(p.explanations)) {
        for (const r of replicas) {
          if (!r.chosen) {
            assert.equal(r.scores.length, 0);
            continue;
          }
          assert.equal(r.scores[0].node, r.chosen);
          const best = r.scores[0].parts;
          for (const s of r.scores) {
            const rank = s.parts.zoneReplicas - best.zoneReplicas || s.parts.nodeReplicas - best.nodeReplicas ||
              best.total - s.parts.total;
            assert.ok(rank >= 0, `${s.node} ranks above the chosen ${r.chosen}`);
          }
        }
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("property: draining moves everything that fits elsewhere; what stays fits nowhere", () => {
  const healthy = clusterArb.map(([nodes, workloads]) => ({
    nodes: nodes.map((n) => ({ ...n, healthy: true, draining: false })),
    workloads,
  }));
  fc.assert(
    fc.property(healthy, fc.nat(), ({ nodes, workloads }, pick) => {
      const first = plan({ nodes, placements: [] }, workloads);
      const placements = after({ nodes, placements: [] }, first);
      const drained = nodes[pick % nodes.length].id;
      const view = { nodes: nodes.map((n) => n.id === drained ? { ...n, draining: true } : n), placements };
      const p = plan(view, workloads);
      checkPlan(view, workloads, p);
      for (const x of placements.filter((x) => x.node === drained)) {
        const moved = p.migrations.some((m) => m.from === x);
        const stuck = p.unplaced.some((u) =>
          u.from === x && u.reasons[0] === `cannot move off ${drained} (${drained} is draining)`
        );
        assert.ok(moved || stuck, `${x.workload}#${x.replica} neither moved nor explained`);
      }
      assert.deepEqual(p.placements, [], "nothing new: only moves");
    }),
    { numRuns: 300 },
  );
});

/** Every field of `v`, and every field of its plain-object fields. */
function paths(v: object): string[][] {
  return Object.entries(v).flatMap(([k, x]) =>
    typeof x === "object" && x !== null && !Array.isArray(x) && Object.keys(x).length > 0
      ? [[k], ...Object.keys(x).map((k2) => [k, k2])]
      : [[k]]
  );
}

function replaced(v: object, [key, inner]: string[], bad: unknown): object {
  const at = (v as Record<string, unknown>)[key];
  return { ...v, [key]: inner === undefined ? bad : { ...(at as object), [inner]: bad } };
}

Deno.test("property: malformed input gives problems and explanations, never an exception", () => {
  const junk = fc.oneof(
    fc.anything({ withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withSparseArray: true }),
    fc.constant({ toString: "" }), // String() of it throws
  );
  const broken = <T extends object>(valid: fc.Arbitrary<T>) =>
    fc.oneof(
      valid,
      junk,
      fc.tuple(valid, fc.string(), junk).map(([v, key, bad]) => ({ ...v, [key]: bad })),
      valid.chain((v) => fc.tuple(fc.constantFrom(...paths(v)), junk).map(([path, bad]) => replaced(v, path, bad))),
    );
  const input = fc.record({
    nodes: fc.oneof(junk, fc.array(broken(nodeArb(0)), { maxLength: 4 })),
    placements: fc.oneof(junk, fc.array(junk, { maxLength: 4 })),
    workloads: fc.oneof(junk, fc.array(broken(workloadArb(0, 1)), { maxLength: 4 })),
  });
  fc.assert(
    fc.property(input, ({ nodes, placements, workloads }) => {
      const view = { nodes, placements } as unknown as ClusterView;
      const ws = workloads as unknown as WorkloadView[];
      const p = plan(view, ws);
      for (const x of p.problems) assert.equal(typeof x.reason, "string");
      for (const u of p.unplaced) assert.ok(u.reasons.length > 0);
      assert.equal(typeof explainPlan(view, ws).text, "string");
    }),
    { numRuns: 500 },
  );
});

Deno.test("Wasm replicas colocate densely: 400 instances counted at 4 MiB share one 2Gi node", () => {
  const node: NodeView = {
    id: "edge-1",
    labels: {},
    capacity: { memory: 2 * GiB, cpuMillis: 4000 },
    gpus: [],
    runtimes: ["wasm"],
    images: [],
    healthy: true,
    draining: false,
  };
  const fn: WorkloadView = {
    id: "edge/fn",
    project: "edge",
    replicas: 400,
    runtimes: ["wasm"],
    memory: 0,
    cpuMillis: 5,
    placement: { labels: {} },
  };
  const p = plan({ nodes: [node], placements: [] }, [fn]);
  assert.equal(p.placements.length, 400);
  assert.ok(p.placements.every((x) => x.node === "edge-1" && x.runtime === "wasm"));
  // Counted at 16 MiB instead, 128 fit; the rest say why, each with the same reasons.
  const heavier = plan({ nodes: [node], placements: [] }, [fn], { wasmDefaultMemory: 16 * MiB });
  assert.equal(heavier.placements.length, 128);
  assert.equal(heavier.unplaced.length, 272);
  assert.deepEqual(heavier.unplaced[0].reasons, ["edge-1: needs 16Mi memory, 0B free"]);
});
