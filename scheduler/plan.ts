/**
 * The placement pipeline (Nomad's shape): an immutable view in, a plan out.
 * Input is checked (validate.ts), running replicas are kept, moved or
 * stopped (changes.ts), then replicas that have to move are placed before new
 * ones: biggest workloads first, each replica on the best node (rank.ts). No
 * I/O, no clock, no randomness: the same input gives the same plan, whatever
 * the order of its lists, and a satisfied state plans nothing.
 */

import { reconcile } from "./changes.ts";
import { type Need, needOf } from "./filter.ts";
import { choose, newScratch } from "./rank.ts";
import { ClusterState, compareIds, DEFAULT_CONTAINER_MEMORY, DEFAULT_WASM_MEMORY } from "./state.ts";
import type { ClusterView, NodeView, Plan, PlanOptions, ReplicaExplanation, WorkloadView } from "./types.ts";
import { checkInput } from "./validate.ts";

export function plan(view: ClusterView, workloads: readonly WorkloadView[], opts: PlanOptions = {}): Plan {
  const explain = opts.explain ?? false;
  const input = checkInput(view, workloads);
  const state = new ClusterState(input.nodes, {
    wasmMemory: opts.wasmDefaultMemory ?? DEFAULT_WASM_MEMORY,
    containerMemory: opts.containerDefaultMemory ?? DEFAULT_CONTAINER_MEMORY,
  });
  const changes = reconcile(state, input, view?.placements ?? []);
  const out: Plan = {
    placements: [],
    migrations: [],
    stops: changes.stops,
    unplaced: [],
    problems: [...input.problems, ...changes.problems],
    explanations: {},
  };
  const needs = placementOrder(state, input.workloads, input.nodes);
  const scratch = newScratch();
  const record = (w: WorkloadView, e: ReplicaExplanation | undefined) => {
    if (e) (out.explanations[w.id] ??= []).push(e);
  };

  // Replicas that run now and have to move come first: they are serving.
  for (const need of needs) {
    const w = need.w;
    let nowhere: string[] | undefined;
    for (const m of changes.moves.get(w.id)!) {
      const choice = nowhere ? { reasons: nowhere } : choose(state, need, m.from.replica, "migrate", explain, scratch);
      record(w, "explanation" in choice ? choice.explanation : undefined);
      if (choice.placement) {
        state.add(w, choice.placement);
        out.migrations.push({ from: m.from, to: choice.placement, reason: m.reason });
      } else {
        if (!explain) nowhere = choice.reasons; // the state only fills up: no later replica of w fits either
        const reasons = [`cannot move off ${m.from.node} (${m.reason})`, ...choice.reasons];
        out.unplaced.push({ workload: w.id, replica: m.from.replica, from: m.from, reasons });
      }
    }
  }

  for (const need of needs) {
    const w = need.w;
    const kept = changes.kept.get(w.id)!;
    const moves = changes.moves.get(w.id)!;
    const used = new Set([...kept.map((p) => p.replica), ...moves.map((m) => m.from.replica)]);
    let index = 0;
    let nowhere: string[] | undefined;
    for (let missing = w.replicas - kept.length - moves.length; missing > 0; missing--) {
      while (used.has(index)) index++;
      const replica = index++;
      const choice = nowhere ? { reasons: nowhere } : choose(state, need, replica, "place", explain, scratch);
      record(w, "explanation" in choice ? choice.explanation : undefined);
      if (choice.placement) {
        state.add(w, choice.placement);
        out.placements.push(choice.placement);
      } else {
        if (!explain) nowhere = choice.reasons;
        out.unplaced.push({ workload: w.id, replica, reasons: choice.reasons });
      }
    }
  }
  return out;
}

/**
 * Hardest to place first: GPU workloads, then by dominant share (the larger
 * of memory and CPU as a share of an average node), then by id. Big items
 * first is what keeps first-fit-decreasing packing near the optimum.
 */
function placementOrder(state: ClusterState, workloads: readonly WorkloadView[], nodes: readonly NodeView[]): Need[] {
  const count = Math.max(1, nodes.length);
  const memory = Math.max(1, nodes.reduce((s, n) => s + n.capacity.memory, 0) / count);
  const cpu = Math.max(1, nodes.reduce((s, n) => s + n.capacity.cpuMillis, 0) / count);
  const ranked = workloads.map((w) => {
    const need = needOf(state, w);
    return { need, gpus: w.gpu?.count ?? 0, share: Math.max(need.minMemory / memory, w.cpuMillis / cpu) };
  });
  ranked.sort((a, b) => b.gpus - a.gpus || b.share - a.share || compareIds(a.need.w.id, b.need.w.id));
  return ranked.map((r) => r.need);
}
