/**
 * Feasibility: can this node take one replica of this workload? Each check
 * answers with the reason it cannot (shown to the user), or nothing.
 */

import { formatMemory, type RuntimeKind } from "../config/mod.ts";
import type { ClusterState, NodeState } from "./state.ts";
import type { WorkloadView } from "./types.ts";

export interface Fit {
  runtime: RuntimeKind;
  gpu?: { group: number; count: number };
}

// Shared results for the common case (no GPU): nothing is allocated per node.
const FIT: Record<RuntimeKind, Fit> = { wasm: { runtime: "wasm" }, container: { runtime: "container" } };

/** Returned instead of a reason when none was asked for (no string is built on the fast path). */
export const REJECTED = "rejected";

/**
 * The runtime and GPU group a replica would use on `n`, or why it cannot go
 * there (`describe`), or REJECTED.
 */
export function fits(state: ClusterState, n: NodeState, w: WorkloadView, describe: boolean): Fit | string {
  const node = n.node;
  if (!node.healthy) return "unhealthy";
  if (node.draining) return "draining";
  // Capacity first: in a packed cluster it rejects most nodes, and it is the cheapest check.
  if (!describe && (w.cpuMillis > n.freeCpu || w.memory > n.freeMemory)) return REJECTED;
  if (w.placement.node !== undefined && node.id !== w.placement.node) {
    return describe ? `not ${w.placement.node} (placement.node)` : REJECTED;
  }
  for (const [key, want] of labelEntries(w.placement.labels)) {
    if (node.labels[key] === want) continue;
    return describe
      ? `label ${key}=${want} wanted, has ${key in node.labels ? `${key}=${node.labels[key]}` : "none"}`
      : REJECTED;
  }
  let runtime: RuntimeKind | undefined;
  for (const r of w.runtimes) {
    if (node.runtimes.includes(r)) {
      runtime = r;
      break;
    }
  }
  if (!runtime) return describe ? `no ${w.runtimes.join(" or ")} runtime` : REJECTED;
  const memory = state.memoryOf(w, runtime);
  if (memory > n.freeMemory) {
    return describe
      ? `needs ${formatMemory(memory)} memory, ${formatMemory(Math.max(0, n.freeMemory))} free`
      : REJECTED;
  }
  if (w.cpuMillis > n.freeCpu) {
    return describe ? `needs ${w.cpuMillis / 1000} cpu, ${Math.max(0, n.freeCpu) / 1000} free` : REJECTED;
  }
  if (!w.gpu) return FIT[runtime];
  const need = w.gpu;
  let best = -1;
  let free = 0;
  node.gpus.forEach((g, i) => {
    if (g.vendor !== need.vendor) return;
    if (need.vramMin !== undefined && (g.vramMb ?? 0) < need.vramMin) return;
    free = Math.max(free, n.gpuFree[i]);
    if (n.gpuFree[i] >= need.count && (best < 0 || n.gpuFree[i] < n.gpuFree[best])) best = i;
  });
  if (best >= 0) return { runtime, gpu: { group: best, count: need.count } };
  if (!describe) return REJECTED;
  const vram = need.vramMin ? ` with >= ${need.vramMin} MB` : "";
  return `needs ${need.count} ${need.vendor} GPU${need.count > 1 ? "s" : ""}${vram}, ${free} free`;
}

const entries = new WeakMap<object, [string, string][]>();

/** A label selector's entries, computed once per selector object. */
function labelEntries(labels: Readonly<Record<string, string>>): [string, string][] {
  let e = entries.get(labels);
  if (!e) entries.set(labels, e = Object.entries(labels));
  return e;
}
