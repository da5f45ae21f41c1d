/**
 * The dry run `orca deploy --plan` prints: what the plan does, and for every
 * replica it places or moves, each node's verdict: the reasons it was turned
 * away, or its rank and the parts of its score. `json` is the `--json` shape.
 */

import { plan } from "./plan.ts";
import type { ClusterView, Placement, Plan, PlanOptions, ReplicaExplanation, WorkloadView } from "./types.ts";

export interface ExplainJson {
  summary: { place: number; migrate: number; stop: number; unplaced: number; problems: number };
  placements: Plan["placements"];
  migrations: Plan["migrations"];
  stops: Plan["stops"];
  unplaced: Plan["unplaced"];
  problems: Plan["problems"];
  explanations: Plan["explanations"];
}

export interface ExplainOptions extends Omit<PlanOptions, "explain"> {
  /** Feasible nodes listed per replica in the text (all by default); the JSON has every one. */
  maxRows?: number;
}

export function explainPlan(
  view: ClusterView,
  workloads: readonly WorkloadView[],
  opts: ExplainOptions = {},
): { text: string; json: ExplainJson; plan: Plan } {
  const { maxRows = Infinity, ...planOptions } = opts;
  const p = plan(view, workloads, { ...planOptions, explain: true });
  const json: ExplainJson = {
    summary: {
      place: p.placements.length,
      migrate: p.migrations.length,
      stop: p.stops.length,
      unplaced: p.unplaced.length,
      problems: p.problems.length,
    },
    placements: p.placements,
    migrations: p.migrations,
    stops: p.stops,
    unplaced: p.unplaced,
    problems: p.problems,
    explanations: p.explanations,
  };
  return { text: render(json, maxRows), json, plan: p };
}

function render(j: ExplainJson, maxRows: number): string {
  const s = j.summary;
  const lines = [
    `plan: ${s.place} to place, ${s.migrate} to migrate, ${s.stop} to stop, ${s.unplaced} cannot be placed` +
    (s.problems > 0 ? `, ${s.problems} input problem${s.problems === 1 ? "" : "s"}` : ""),
  ];
  for (const x of j.placements) lines.push(`  place ${at(x)} on ${x.node} (${runtimeOf(x)})`);
  for (const m of j.migrations) {
    lines.push(`  migrate ${at(m.from)}: ${m.from.node} -> ${m.to.node} (${runtimeOf(m.to)}; ${m.reason})`);
  }
  for (const x of j.stops) lines.push(`  stop ${at(x.placement)} on ${x.placement.node} (${x.reason})`);
  for (const u of j.unplaced) {
    lines.push(`  cannot place ${u.workload}#${u.replica}:`);
    for (const r of u.reasons) lines.push(`    ${r}`);
  }
  for (const x of j.problems) lines.push(`  problem: ${x.reason}`);
  for (const [workload, replicas] of Object.entries(j.explanations)) {
    for (const r of replicas) lines.push("", ...replicaTable(workload, r, maxRows));
  }
  return lines.join("\n");
}

const HEADER = [
  "NODE",
  "VERDICT",
  "IN ZONE",
  "ON NODE",
  "FIT",
  "WASTE",
  "IMAGE",
  "LOCALITY",
  "RUNTIME",
  "GPU",
  "SCORE",
];

function replicaTable(workload: string, r: ReplicaExplanation, maxRows: number): string[] {
  const lines = [`${workload}#${r.replica} (${r.action}) -> ${r.chosen ?? "nowhere"}`];
  const shown = r.scores.slice(0, maxRows);
  if (shown.length > 0) {
    const rows = [
      HEADER,
      ...shown.map((x) => [
        x.node,
        `${x.node === r.chosen ? "chosen" : "feasible"} (${x.runtime})`,
        String(x.parts.zoneReplicas),
        String(x.parts.nodeReplicas),
        ...[x.parts.fit, x.parts.waste, x.parts.image, x.parts.locality, x.parts.runtime, x.parts.gpu, x.parts.total]
          .map(fixed),
      ]),
    ];
    const widths = HEADER.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    for (const row of rows) lines.push(`  ${row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()}`);
  }
  if (r.scores.length > shown.length) lines.push(`  ... ${r.scores.length - shown.length} more feasible nodes`);
  for (const x of r.rejected) lines.push(`  ${x.node}: ${x.reasons.join("; ")}`);
  return lines;
}

function at(x: Placement): string {
  return `${x.workload}#${x.replica}`;
}

function runtimeOf(x: Placement): string {
  return x.gpu ? `${x.runtime}, ${x.gpu.count} GPU${x.gpu.count === 1 ? "" : "s"} of group ${x.gpu.group}` : x.runtime;
}

/** Two decimals, and no "-0.00". */
function fixed(x: number): string {
  const s = x.toFixed(2);
  return s === "-0.00" ? "0.00" : s;
}
