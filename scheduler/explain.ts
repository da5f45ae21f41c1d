/**
 * The dry run `orca deploy --plan` prints: the plan, and for every replica
 * placed, each node's verdict (why not, or its score and the parts of it).
 */

import { plan } from "./plan.ts";
import type { ClusterView, Plan, PlanOptions, WorkloadView } from "./types.ts";

export interface ExplainJson {
  place: Plan["place"];
  stop: Plan["stop"];
  migrate: Plan["migrate"];
  unplaced: Plan["unplaced"];
  explanations: Plan["explanations"];
}

export function explainPlan(
  view: ClusterView,
  workloads: readonly WorkloadView[],
  opts: Omit<PlanOptions, "explain"> = {},
): { text: string; json: ExplainJson; plan: Plan } {
  const p = plan(view, workloads, { ...opts, explain: true });
  const lines: string[] = [];
  const summary = [
    `${p.place.length} to place`,
    `${p.migrate.length} to migrate`,
    `${p.stop.length} to stop`,
    `${p.unplaced.length} cannot be placed`,
  ];
  lines.push(`plan: ${summary.join(", ")}`);
  for (const m of p.migrate) {
    lines.push(`  migrate ${m.from.workload}#${m.from.replica}: ${m.from.node} -> ${m.to.node} (${m.reason})`);
  }
  for (const s of p.stop) lines.push(`  stop ${s.workload}#${s.replica} on ${s.node}`);
  for (const u of p.unplaced) {
    lines.push(`  cannot place ${u.workload}#${u.replica}:`);
    for (const r of u.reasons) lines.push(`    ${r}`);
  }
  for (const [workload, replicas] of Object.entries(p.explanations)) {
    for (const r of replicas) {
      lines.push("");
      lines.push(`${workload}#${r.replica} -> ${r.chosen ?? "nowhere"}`);
      const rows = [
        ["NODE", "VERDICT", "BINPACK", "IMAGE", "LOCALITY", "RUNTIME", "SPREAD", "TOTAL"],
        ...[...r.scores].sort((a, b) => b.parts.total - a.parts.total).map((s) => [
          s.node,
          s.node === r.chosen ? `chosen (${s.runtime})` : `feasible (${s.runtime})`,
          ...[s.parts.binpack, s.parts.image, s.parts.locality, s.parts.runtime, s.parts.spread, s.parts.total].map((
            x,
          ) => x.toFixed(2)),
        ]),
        ...r.rejected.map((x) => [x.node, x.reason, "", "", "", "", "", ""]),
      ];
      const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
      for (const row of rows) lines.push(`  ${row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()}`);
    }
  }
  const json: ExplainJson = {
    place: p.place,
    stop: p.stop,
    migrate: p.migrate,
    unplaced: p.unplaced,
    explanations: p.explanations,
  };
  return { text: lines.join("\n"), json, plan: p };
}
