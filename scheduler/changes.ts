/**
 * What happens to what runs now. A running replica stays where it is while
 * its node and its workload still allow it; otherwise it moves (drain, node
 * lost, constraints or resources changed). Replicas of a removed workload, and
 * those beyond the wanted count, stop: moving ones first, then the most
 * crowded (spread.ts). Kept replicas are counted into the state in one fixed
 * order, so an over-committed node sheds the same replicas every time. A
 * replica that has to move keeps its resources on its node for the whole plan
 * (a migration starts the new replica before it stops the old one), so nothing
 * new is put into room that is still taken.
 */

import { cpu, type Filter, memory, needOf } from "./filter.ts";
import { surplusIndex } from "./spread.ts";
import { type ClusterState, compareIds, type NodeState } from "./state.ts";
import type { Placement, Problem, Stop, WorkloadView } from "./types.ts";
import { type CheckedInput, shown } from "./validate.ts";

export interface Move {
  w: WorkloadView;
  from: Placement;
  reason: string;
}

export interface Reconciled {
  /** Per workload: replicas that stay (counted in the state unless their node is unusable). */
  kept: Map<string, Placement[]>;
  /** Per workload: running replicas that have to move. */
  moves: Map<string, Move[]>;
  stops: Stop[];
  problems: Problem[];
}

export function reconcile(
  state: ClusterState,
  input: CheckedInput,
  placements: readonly Placement[],
): Reconciled {
  const out: Reconciled = { kept: new Map(), moves: new Map(), stops: [], problems: [] };
  const byId = new Map(input.workloads.map((w) => [w.id, w]));
  for (const w of input.workloads) {
    out.kept.set(w.id, []);
    out.moves.set(w.id, []);
  }
  const seen = new Set<string>();
  for (const p of sorted(placements, out.problems)) {
    if (input.skipped.has(p.workload)) continue;
    const w = byId.get(p.workload);
    if (!w) {
      out.stops.push({ placement: p, reason: `workload ${p.workload} is gone` });
      continue;
    }
    const key = `${p.replica}\u0000${p.workload}`;
    if (seen.has(key)) {
      out.stops.push({ placement: p, reason: `replica ${p.replica} of ${p.workload} runs twice` });
      continue;
    }
    seen.add(key);
    if (input.unusable.has(p.node)) {
      out.kept.get(w.id)!.push(p); // left as it is, uncounted: the node's figures cannot be trusted
      continue;
    }
    const n = state.byId.get(p.node);
    const reason = n ? invalidOn(n, w, p) ?? overCommitted(state, n, w, p) : `node ${p.node} is gone`;
    if (reason) {
      out.moves.get(w.id)!.push({ w, from: p, reason });
      state.hold(w, p); // it runs there until its replacement has started
    } else {
      state.add(w, p);
      out.kept.get(w.id)!.push(p);
    }
  }
  const ordered = [...input.workloads].sort((a, b) => compareIds(a.id, b.id));
  for (const w of ordered) scaleDown(state, w, out);
  return out;
}

/** Stops replicas beyond `w.replicas`: those that would have to move first, then the most crowded. */
function scaleDown(state: ClusterState, w: WorkloadView, out: Reconciled): void {
  const kept = out.kept.get(w.id)!;
  const moves = out.moves.get(w.id)!;
  const reason = `scaled down to ${w.replicas} replica${w.replicas === 1 ? "" : "s"}`;
  while (kept.length + moves.length > w.replicas && moves.length > 0) {
    const { from } = moves.pop()!;
    state.release(w, from);
    out.stops.push({ placement: from, reason });
  }
  while (kept.length > w.replicas) {
    const [victim] = kept.splice(surplusIndex(state, w.id, kept), 1);
    state.remove(w, victim);
    out.stops.push({ placement: victim, reason });
  }
}

/** Why a running replica can no longer stay on `n`, or undefined. */
export function invalidOn(n: NodeState, w: WorkloadView, p: Placement): string | undefined {
  const node = n.node;
  if (!node.healthy) return `${node.id} is unhealthy`;
  if (node.draining) return `${node.id} is draining`;
  const pin = w.placement.node;
  if (pin !== undefined && pin !== node.id && pin !== node.name) return `pinned to ${pin} now`;
  for (const [key, want] of Object.entries(w.placement.labels)) {
    if (node.labels[key] !== want) return `${node.id} lacks label ${key}=${want}`;
  }
  if (!w.runtimes.includes(p.runtime)) return `the workload no longer runs as ${p.runtime}`;
  if (!node.runtimes.includes(p.runtime)) return `${node.id} has no ${p.runtime} runtime now`;
  if (w.gpu && !p.gpu) return "it needs GPUs now";
  if (!w.gpu && p.gpu) return "it needs no GPU now";
  if (w.gpu && p.gpu) {
    const g = node.gpus[p.gpu.group];
    const ok = g !== undefined && g.vendor === w.gpu.vendor && p.gpu.count === w.gpu.count &&
      (w.gpu.vramMin === undefined || (g.vramMb ?? 0) >= w.gpu.vramMin);
    if (!ok) return "its GPU request changed";
  }
  return undefined;
}

/** Why the replica does not fit next to those kept before it, or undefined. */
function overCommitted(state: ClusterState, n: NodeState, w: WorkloadView, p: Placement): string | undefined {
  const c = { runtime: p.runtime, memory: state.memoryOf(w, p.runtime), gpuGroup: p.gpu?.group ?? -1 };
  const gpuFits = !p.gpu || n.gpuFree[p.gpu.group] >= p.gpu.count;
  if (c.memory <= n.freeMemory && w.cpuMillis <= n.freeCpu && gpuFits) return undefined;
  const need = needOf(state, w);
  const check = (f: Filter) => f(state, n, need, c, true);
  const reason = check(memory) ?? check(cpu) ??
    (gpuFits ? undefined : `its GPUs are taken, ${n.gpuFree[p.gpu!.group]} free`);
  return reason && `${n.node.id} is over-committed: ${reason}`;
}

/** Well-formed placements in one fixed order (workload, replica, node, ...); the rest become problems. */
function sorted(placements: readonly Placement[], problems: Problem[]): Placement[] {
  const ok: Placement[] = [];
  for (const p of Array.isArray(placements) ? placements : []) {
    const wellFormed = typeof p?.workload === "string" && typeof p.node === "string" &&
      Number.isInteger(p.replica) && p.replica >= 0 && (p.runtime === "wasm" || p.runtime === "container") &&
      (p.gpu === undefined || (Number.isInteger(p.gpu?.group) && Number.isInteger(p.gpu.count)));
    if (wellFormed) ok.push(p);
    else problems.push({ reason: `a malformed placement is ignored: ${safeJson(p)}` });
  }
  return ok.sort((a, b) =>
    compareIds(a.workload, b.workload) || a.replica - b.replica || compareIds(a.node, b.node) ||
    compareIds(a.runtime, b.runtime) || (a.gpu?.group ?? -1) - (b.gpu?.group ?? -1) ||
    (a.gpu?.count ?? -1) - (b.gpu?.count ?? -1)
  );
}

function safeJson(x: unknown): string {
  try {
    return JSON.stringify(x) ?? shown(x);
  } catch (_err) {
    return shown(x); // a BigInt, a cycle, a throwing toJSON
  }
}
