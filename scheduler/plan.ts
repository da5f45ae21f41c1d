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
  // Dominant share: each workload's largest fraction of an average node, memory or cpu.
  const avg = averageCapacity(view.nodes);
  const share = (w: WorkloadView) => Math.max(w.memory / avg.memory, w.cpuMillis / avg.cpuMillis);
  const order = [...workloads].sort((a, b) =>
    (b.gpu?.count ?? 0) - (a.gpu?.count ?? 0) || share(b) - share(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
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

function averageCapacity(nodes: readonly { capacity: { memory: number; cpuMillis: number } }[]) {
  const n = Math.max(1, nodes.length);
  return {
    memory: Math.max(1, nodes.reduce((s, x) => s + x.capacity.memory, 0) / n),
    cpuMillis: Math.max(1, nodes.reduce((s, x) => s + x.capacity.cpuMillis, 0) / n),
  };
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
  const feasibleNodes: NodeState[] = [];
  const feasibleFits: Fit[] = [];
  const rejected: { node: string; reason: string }[] = [];
  const zones = state.zoneCounts.get(w.id);
  let minZone = Infinity;
  const emptyClasses = new Set<string>();
  for (const n of state.nodes) {
    if (!explain && n.replicas.size === 0) {
      if (emptyClasses.has(n.classKey)) continue; // scores exactly like an earlier empty node of its class
      emptyClasses.add(n.classKey);
    }
    const fit = fits(state, n, w, explain);
    if (typeof fit === "string") {
      if (explain) rejected.push({ node: n.node.id, reason: fit });
      continue;
    }
    feasibleNodes.push(n);
    feasibleFits.push(fit);
    const z = zones?.get(n.zone) ?? 0;
    if (z < minZone) minZone = z;
  }
  let best = -1;
  let bestScore = -Infinity;
  const scores: ReplicaExplanation["scores"] = [];
  for (let i = 0; i < feasibleNodes.length; i++) {
    const n = feasibleNodes[i];
    const parts = explain ? {} as ScoreParts : undefined;
    const s = score(state, n, w, feasibleFits[i].runtime, (zones?.get(n.zone) ?? 0) - minZone, parts);
    if (parts) scores.push({ node: n.node.id, runtime: feasibleFits[i].runtime, parts });
    if (s > bestScore || (s === bestScore && n.node.id < feasibleNodes[best].node.id)) [best, bestScore] = [i, s];
  }
  const chosen = best >= 0 ? { n: feasibleNodes[best], fit: feasibleFits[best] } : undefined;
  const placement: Placement | undefined = chosen && {
    workload: w.id,
    replica,
    node: chosen.n.node.id,
    runtime: chosen.fit.runtime,
    ...(chosen.fit.gpu && { gpu: chosen.fit.gpu }),
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
