/**
 * Scripted scenarios: each file in scenarios/ is a cluster, what runs on it
 * and the workloads, with the whole plan expected and lines the explanation
 * must contain. Every scenario is then planned again on its own result: a
 * satisfied state plans nothing.
 */

import assert from "node:assert/strict";
import { parseMemory } from "../config/mod.ts";
import { explainPlan } from "./explain.ts";
import type { ClusterView, GpuGroup, GpuNeed, NodeView, Placement, Plan, WorkloadView } from "./types.ts";

interface ScenarioNode {
  id: string;
  name?: string;
  zone?: string;
  labels?: Record<string, string>;
  /** "4Gi"; default 4Gi. */
  memory?: string;
  /** Cores; default 4. */
  cpu?: number;
  reserved?: { memory: string; cpu: number; gpus?: number[] };
  gpus?: GpuGroup[];
  runtimes?: NodeView["runtimes"];
  images?: string[];
  healthy?: boolean;
  draining?: boolean;
}

interface ScenarioWorkload {
  id: string;
  replicas?: number;
  /** Default ["container"]. */
  runtimes?: WorkloadView["runtimes"];
  /** "512Mi", or "0" for undeclared; default 256Mi. */
  memory?: string;
  /** Cores; default 0.5. */
  cpu?: number;
  gpu?: GpuNeed;
  placement?: { node?: string; labels?: Record<string, string> };
  image?: string;
}

interface Scenario {
  description: string;
  nodes: ScenarioNode[];
  placements?: Placement[];
  workloads: ScenarioWorkload[];
  /** Each list is compared whole (sorted), in the shapes `render` writes. */
  expect: {
    place?: string[];
    migrate?: string[];
    stop?: string[];
    unplaced?: string[];
    problems?: string[];
    /** Lines (runs of spaces squeezed) that the explanation text must contain. */
    explain?: string[];
  };
}

const bytes = (s: string | undefined, fallback: string) => s === "0" ? 0 : parseMemory(s ?? fallback) ?? NaN;

export function load(s: Scenario): { view: ClusterView; workloads: WorkloadView[] } {
  const nodes = s.nodes.map((n): NodeView => ({
    id: n.id,
    ...(n.name !== undefined && { name: n.name }),
    ...(n.zone !== undefined && { zone: n.zone }),
    labels: n.labels ?? {},
    capacity: { memory: bytes(n.memory, "4Gi"), cpuMillis: (n.cpu ?? 4) * 1000 },
    ...(n.reserved && {
      reserved: {
        memory: bytes(n.reserved.memory, "0"),
        cpuMillis: n.reserved.cpu * 1000,
        ...(n.reserved.gpus && { gpus: n.reserved.gpus }),
      },
    }),
    gpus: n.gpus ?? [],
    runtimes: n.runtimes ?? ["wasm", "container"],
    images: n.images ?? [],
    healthy: n.healthy ?? true,
    draining: n.draining ?? false,
  }));
  const workloads = s.workloads.map((w): WorkloadView => ({
    id: w.id,
    project: w.id.split("/")[0],
    replicas: w.replicas ?? 1,
    runtimes: w.runtimes ?? ["container"],
    memory: bytes(w.memory, "256Mi"),
    cpuMillis: Math.round((w.cpu ?? 0.5) * 1000),
    ...(w.gpu && { gpu: w.gpu }),
    placement: { labels: {}, ...w.placement },
    ...(w.image !== undefined && { image: w.image }),
  }));
  return { view: { nodes, placements: s.placements ?? [] }, workloads };
}

/** `web/api#0@node-1`, with `:wasm` for Wasm and ` gpu0x1` for one GPU of group 0. */
function at(x: Placement): string {
  const gpu = x.gpu ? ` gpu${x.gpu.group}x${x.gpu.count}` : "";
  return `${x.workload}#${x.replica}@${x.node}${x.runtime === "wasm" ? ":wasm" : ""}${gpu}`;
}

export function render(p: Plan) {
  return {
    place: p.placements.map(at).sort(),
    migrate: p.migrations.map((m) => `${at(m.from)} -> ${at(m.to)} (${m.reason})`).sort(),
    stop: p.stops.map((s) => `${at(s.placement)} (${s.reason})`).sort(),
    unplaced: p.unplaced.map((u) => `${u.workload}#${u.replica}: ${u.reasons.join(" | ")}`).sort(),
    problems: p.problems.map((x) => x.reason).sort(),
  };
}

/** What runs once the plan is carried out. */
export function after(view: ClusterView, p: Plan): Placement[] {
  const gone = new Set([...p.stops.map((s) => s.placement), ...p.migrations.map((m) => m.from)]);
  return [...view.placements.filter((x) => !gone.has(x)), ...p.placements, ...p.migrations.map((m) => m.to)];
}

const squeeze = (s: string) => s.replace(/ +/g, " ");
const dir = new URL("./scenarios/", import.meta.url);
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".json")).sort();

Deno.test("scenarios: the folder holds the scripted scenarios", () => {
  assert.ok(files.length >= 15, `only ${files.length} scenarios`);
});

for (const file of files) {
  const scenario = JSON.parse(Deno.readTextFileSync(new URL(file, dir))) as Scenario;
  Deno.test(`scenario ${file}: ${scenario.description}`, () => {
    const { view, workloads } = load(scenario);
    const { text, plan } = explainPlan(view, workloads);
    const got = render(plan);
    const want = scenario.expect;
    for (const key of ["place", "migrate", "stop", "unplaced", "problems"] as const) {
      assert.deepEqual(got[key], [...(want[key] ?? [])].sort(), `${key} differs; the explanation:\n${text}`);
    }
    for (const line of want.explain ?? []) {
      assert.ok(squeeze(text).includes(squeeze(line)), `missing "${line}" in:\n${text}`);
    }
    const again = render(explainPlan({ ...view, placements: after(view, plan) }, workloads).plan);
    assert.deepEqual([again.place, again.migrate, again.stop], [[], [], []], "a satisfied state plans nothing");
    const ids = (lines: string[]) => lines.map((l) => l.slice(0, l.indexOf(":")));
    assert.deepEqual(ids(again.unplaced), ids(got.unplaced), "what could not be placed still cannot");
  });
}
