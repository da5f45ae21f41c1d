/**
 * Scripted scenarios: each file in scenarios/ is a cluster, current
 * placements and workloads, with the plan and explanation lines expected.
 */

import assert from "node:assert/strict";
import { parseMemory } from "../config/mod.ts";
import { explainPlan } from "./explain.ts";
import type { ClusterView, NodeView, Placement, Plan, WorkloadView } from "./types.ts";

interface Scenario {
  description: string;
  nodes:
    (Partial<NodeView> & { id: string; memory?: string; cpu?: number; reserved?: { memory: string; cpu: number } })[];
  placements?: Placement[];
  workloads: (Partial<Omit<WorkloadView, "memory" | "placement">> & {
    id: string;
    memory?: string;
    cpu?: number;
    placement?: Partial<WorkloadView["placement"]>;
  })[];
  expect: { place?: string[]; stop?: string[]; migrate?: string[]; unplaced?: string[]; explain?: string[] };
}

const bytes = (s: string | undefined, fallback: string) => s === "0" ? 0 : parseMemory(s ?? fallback)!;

export function load(s: Scenario): { view: ClusterView; workloads: WorkloadView[] } {
  const nodes: NodeView[] = s.nodes.map((n) => ({
    id: n.id,
    ...(n.zone && { zone: n.zone }),
    labels: n.labels ?? {},
    capacity: { memory: bytes(n.memory, "4Gi"), cpuMillis: (n.cpu ?? 4) * 1000 },
    ...(n.reserved && { reserved: { memory: bytes(n.reserved.memory, "0"), cpuMillis: n.reserved.cpu * 1000 } }),
    gpus: n.gpus ?? [],
    runtimes: n.runtimes ?? ["wasm", "container"],
    images: n.images ?? [],
    healthy: n.healthy ?? true,
    draining: n.draining ?? false,
  }));
  const workloads: WorkloadView[] = s.workloads.map((w) => ({
    id: w.id,
    project: w.id.split("/")[0],
    replicas: w.replicas ?? 1,
    runtimes: w.runtimes ?? ["container"],
    memory: bytes(w.memory, "256Mi"),
    cpuMillis: Math.round((w.cpu ?? 0.5) * 1000),
    ...(w.gpu && { gpu: w.gpu }),
    placement: { labels: {}, ...w.placement },
    ...(w.image && { image: w.image }),
  }));
  return { view: { nodes, placements: s.placements ?? [] }, workloads };
}

function render(p: Plan) {
  const at = (x: Placement) => `${x.workload}#${x.replica}@${x.node}${x.runtime === "wasm" ? ":wasm" : ""}`;
  return {
    place: p.place.map(at).sort(),
    stop: p.stop.map(at).sort(),
    migrate: p.migrate.map((m) => `${m.from.workload}#${m.from.replica}: ${m.from.node} -> ${m.to.node} (${m.reason})`)
      .sort(),
    unplaced: p.unplaced.map((u) => `${u.workload}#${u.replica}: ${u.reasons.join(" | ")}`).sort(),
  };
}

const dir = new URL("./scenarios/", import.meta.url);
for (
  const entry of [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".json")).sort((a, b) =>
    a.name.localeCompare(b.name)
  )
) {
  const scenario = JSON.parse(Deno.readTextFileSync(new URL(entry.name, dir))) as Scenario;
  Deno.test(`scenario ${entry.name}: ${scenario.description}`, () => {
    const { view, workloads } = load(scenario);
    const { text, plan } = explainPlan(view, workloads);
    const got = render(plan);
    const want = scenario.expect;
    assert.deepEqual(got.place, [...(want.place ?? [])].sort(), text);
    assert.deepEqual(got.stop, [...(want.stop ?? [])].sort(), text);
    assert.deepEqual(got.migrate, [...(want.migrate ?? [])].sort(), text);
    assert.deepEqual(got.unplaced, [...(want.unplaced ?? [])].sort(), text);
    const squeezed = text.replace(/ +/g, " ");
    for (const line of want.explain ?? []) {
      assert.ok(squeezed.includes(line.replace(/ +/g, " ")), `missing "${line}" in:\n${text}`);
    }
    // Re-planning the planned state changes nothing.
    const after: Placement[] = [
      ...view.placements.filter((p) => !plan.stop.includes(p) && !plan.migrate.some((m) => m.from === p)),
      ...plan.place,
      ...plan.migrate.map((m) => m.to),
    ];
    const again = render(explainPlan({ ...view, placements: after }, workloads).plan);
    assert.deepEqual(again.place, [], "a satisfied state plans nothing");
    assert.deepEqual(again.stop, []);
    assert.deepEqual(again.migrate.filter((m) => !m.includes("draining")), []);
  });
}
