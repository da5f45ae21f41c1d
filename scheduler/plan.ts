/**
 * The placement pipeline (Nomad's shape): an immutable view in, a plan out.
 * Current placements that are still valid are kept; replicas on draining or
 * unhealthy nodes migrate; surplus replicas stop (from the most crowded zone
 * first); missing replicas are placed, biggest workloads first, each on the
 * feasible node with the best score. No I/O, no clock, no randomness: the
 * same input gives the same plan, and a satisfied state plans nothing.
 */

import { type Fit, fits } from "./filter.ts";
import { score } from "./score.ts";
import { ClusterState, type NodeState } from "./state.ts";
import type {
  ClusterView,
  Placement,
  Plan,
  PlanOptions,
  ReplicaExplanation,
  ScoreParts,
  WorkloadView,
} from "./types.ts";

const DEFAULT_WASM_MEMORY = 4 * 2 ** 20;

export function plan(view: ClusterView, workloads: readonly WorkloadView[], opts: PlanOptions = {}): Plan {
  const explain = opts.explain ?? false;
  const state = new ClusterState(view.nodes, opts.wasmDefaultMemory ?? DEFAULT_WASM_MEMORY);
  const out: Plan = { place: [], stop: [], migrate: [], unplaced: [], explanations: {} };
  const byId = new Map(workloads.map((w) => [w.id, w]));
  const current = new Map<string, Placement[]>();
  for (const p of view.placements) {
    const w = byId.get(p.workload);
    if (!w) {
      out.stop.push(p); // the workload is gone
      continue;
    }
    let list = current.get(w.id);
    if (!list) current.set(w.id, list = []);
    list.push(p);
  }

  // Keep what is valid; collect what has to move.
  const moving: { w: WorkloadView; from: Placement; reason: string }[] = [];
  const kept = new Map<string, Placement[]>();
  for (const w of workloads) {
    const ok: Placement[] = [];
    for (const p of current.get(w.id) ?? []) {
      const n = state.byId.get(p.node);
      const reason = !n ? `node ${p.node} is gone` : invalidOn(n, w, p);
      if (reason) moving.push({ w, from: p, reason });
      else {
        ok.push(p);
        state.add(w, p);
      }
    }
    kept.set(w.id, ok);
  }

  // Scale down: stop surplus replicas, most crowded zone (then node) first.
  for (const w of workloads) {
    const ok = kept.get(w.id)!;
    while (ok.length > w.replicas) {
      ok.sort((a, b) => crowding(state, w, b) - crowding(state, w, a) || b.replica - a.replica);
      const victim = ok.shift()!;
      state.remove(w, victim);
      out.stop.push(victim);
    }
  }
  // Moving replicas beyond the wanted count just stop.
  const movingBy = new Map<string, typeof moving>();
  for (const m of moving) {
    const ok = kept.get(m.w.id)!;
    const list = movingBy.get(m.w.id) ?? [];
    if (ok.length + list.length >= m.w.replicas) out.stop.push(m.from);
    else movingBy.set(m.w.id, [...list, m]);
  }

  // Place: biggest first (GPU, then memory, then cpu), ties by id.
  const order = [...workloads].sort((a, b) =>
    (b.gpu?.count ?? 0) - (a.gpu?.count ?? 0) || b.memory - a.memory || b.cpuMillis - a.cpuMillis ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
  for (const w of order) {
    const ok = kept.get(w.id)!;
    const moves = movingBy.get(w.id) ?? [];
    const used = new Set([...ok, ...moves.map((m) => m.from)].map((p) => p.replica));
    let nextIndex = 0;
    const freshIndex = () => {
      while (used.has(nextIndex)) nextIndex++;
      used.add(nextIndex);
      return nextIndex;
    };
    const explanations: ReplicaExplanation[] = [];
    for (const m of moves) {
      const choice = choose(state, w, m.from.replica, explain);
      if (explain) explanations.push(choice.explanation!);
      if (choice.placement) {
        state.add(w, choice.placement);
        out.migrate.push({ from: m.from, to: choice.placement, reason: m.reason });
      } else {
        out.unplaced.push({
          workload: w.id,
          replica: m.from.replica,
          reasons: [`cannot move off ${m.from.node} (${m.reason})`, ...choice.reasons],
        });
      }
    }
    for (let missing = w.replicas - ok.length - moves.length; missing > 0; missing--) {
      const replica = freshIndex();
      const choice = choose(state, w, replica, explain);
      if (explain) explanations.push(choice.explanation!);
      if (choice.placement) {
        state.add(w, choice.placement);
        out.place.push(choice.placement);
      } else {
        out.unplaced.push({ workload: w.id, replica, reasons: choice.reasons });
      }
    }
    if (explain && explanations.length > 0) out.explanations[w.id] = explanations;
  }
  return out;
}

/** Why a current placement can no longer stay where it is, or undefined. */
function invalidOn(n: NodeState, w: WorkloadView, p: Placement): string | undefined {
  if (!n.node.healthy) return `${n.node.id} is unhealthy`;
  if (n.node.draining) return `${n.node.id} is draining`;
  if (w.placement.node !== undefined && w.placement.node !== n.node.id) return `pinned to ${w.placement.node} now`;
  for (const key in w.placement.labels) {
    if (n.node.labels[key] !== w.placement.labels[key]) {
      return `${n.node.id} lacks label ${key}=${w.placement.labels[key]}`;
    }
  }
  if (!n.node.runtimes.includes(p.runtime)) return `${n.node.id} no longer has the ${p.runtime} runtime`;
  return undefined;
}

function crowding(state: ClusterState, w: WorkloadView, p: Placement): number {
  const n = state.byId.get(p.node)!;
  return 1000 * state.zoneCount(w.id, n.zone) + (n.replicas.get(w.id) ?? 0);
}

interface Choice {
  placement?: Placement;
  reasons: string[];
  explanation?: ReplicaExplanation;
}

/** The best feasible node for one replica (ties: the lower node id). */
function choose(state: ClusterState, w: WorkloadView, replica: number, explain: boolean): Choice {
  const feasible: { n: NodeState; fit: Fit }[] = [];
  const rejected: { node: string; reason: string }[] = [];
  let minZone = Infinity;
  for (const n of state.nodes) {
    const fit = fits(state, n, w, explain);
    if (typeof fit === "string") {
      if (explain) rejected.push({ node: n.node.id, reason: fit });
      continue;
    }
    feasible.push({ n, fit });
    const z = state.zoneCount(w.id, n.zone);
    if (z < minZone) minZone = z;
  }
  let best: { n: NodeState; fit: Fit } | undefined;
  let bestScore = -Infinity;
  const scores: ReplicaExplanation["scores"] = [];
  for (const f of feasible) {
    const parts = explain ? {} as ScoreParts : undefined;
    const s = score(state, f.n, w, f.fit.runtime, minZone, parts);
    if (parts) scores.push({ node: f.n.node.id, runtime: f.fit.runtime, parts });
    if (s > bestScore || (s === bestScore && best && f.n.node.id < best.n.node.id)) [best, bestScore] = [f, s];
  }
  const placement: Placement | undefined = best && {
    workload: w.id,
    replica,
    node: best.n.node.id,
    runtime: best.fit.runtime,
    ...(best.fit.gpu && { gpu: best.fit.gpu }),
  };
  const reasons = placement ? [] : explainRejections(state, w, rejected, explain);
  return {
    ...(placement && { placement }),
    reasons,
    ...(explain && { explanation: { replica, ...(placement && { chosen: placement.node }), rejected, scores } }),
  };
}

/** Every node's reason, computed now if the fast path skipped them. */
function explainRejections(
  state: ClusterState,
  w: WorkloadView,
  rejected: { node: string; reason: string }[],
  explained: boolean,
) {
  if (state.nodes.length === 0) return ["the cluster has no nodes"];
  const list = explained
    ? rejected
    : state.nodes.map((n) => ({ node: n.node.id, reason: fits(state, n, w, true) as string }));
  return list.map((r) => `${r.node}: ${r.reason}`);
}
