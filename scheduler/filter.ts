/**
 * Feasibility: can this node take one replica of this workload? One filter
 * per constraint; each answers with the reason it cannot (shown to the user)
 * or `undefined`. Without `describe` a filter answers the shared `REJECTED`
 * instead, so no string is built on the fast path.
 */

import { formatMemory, type RuntimeKind } from "../config/mod.ts";
import type { ClusterState, NodeState } from "./state.ts";
import type { WorkloadView } from "./types.ts";

export const REJECTED = "rejected";

/** What the filters need from a workload, worked out once per workload. */
export interface Need {
  readonly w: WorkloadView;
  /** Runtimes it may use: Wasm has no GPU access, so a GPU workload runs as a container. */
  readonly wasm: boolean;
  readonly container: boolean;
  /** The least memory a replica counts for on any runtime it may use. */
  readonly minMemory: number;
  readonly labels: readonly (readonly [string, string])[];
}

/** What the node would give the replica, filled in as the filters pass. */
export interface Candidate {
  runtime: RuntimeKind;
  /** Bytes the replica counts for on that runtime. */
  memory: number;
  /** The GPU group it would take its GPUs from; -1 for none. */
  gpuGroup: number;
}

export type Filter = (
  state: ClusterState,
  n: NodeState,
  need: Need,
  c: Candidate,
  describe: boolean,
) => string | undefined;

export function needOf(state: ClusterState, w: WorkloadView): Need {
  const wasm = w.gpu === undefined && w.runtimes.includes("wasm");
  const container = w.runtimes.includes("container");
  const memories = [...(wasm ? ["wasm" as const] : []), ...(container ? ["container" as const] : [])]
    .map((r) => state.memoryOf(w, r));
  return { w, wasm, container, minMemory: Math.min(...memories), labels: Object.entries(w.placement.labels) };
}

export function newCandidate(): Candidate {
  return { runtime: "container", memory: 0, gpuGroup: -1 };
}

export const healthy: Filter = (_s, n) => n.node.healthy ? undefined : "unhealthy";

export const notDraining: Filter = (_s, n) => n.node.draining ? "draining" : undefined;

/** `placement.node` names one node by id or name, exactly: "gpu-1" never means "gpu-10". */
export const pinned: Filter = (_s, n, need, _c, describe) => {
  const pin = need.w.placement.node;
  if (pin === undefined || n.node.id === pin || n.node.name === pin) return undefined;
  return describe ? `not ${pin} (placement.node)` : REJECTED;
};

/** Every label of the selector must match. */
export const labels: Filter = (_s, n, need, _c, describe) => {
  let reasons: string[] | undefined;
  for (const [key, want] of need.labels) {
    const has = n.node.labels[key];
    if (has === want) continue;
    if (!describe) return REJECTED;
    (reasons ??= []).push(`label ${key}=${want} wanted, has ${has === undefined ? "none" : `${key}=${has}`}`);
  }
  return reasons?.join("; ");
};

/** Wasm where both the workload and the node can, else a container where both can. */
export const runtime: Filter = (state, n, need, c, describe) => {
  const w = need.w;
  const runtimes = n.node.runtimes;
  if (need.wasm && runtimes.includes("wasm")) c.runtime = "wasm";
  else if (need.container && runtimes.includes("container")) c.runtime = "container";
  else {
    c.runtime = need.wasm ? "wasm" : "container";
    c.memory = state.memoryOf(w, c.runtime);
    if (!describe) return REJECTED;
    if (!need.wasm && !need.container) return "GPUs need the container runtime; the workload runs only as Wasm";
    const wanted = [...(need.wasm ? ["wasm"] : []), ...(need.container ? ["container"] : [])];
    return `no ${wanted.join(" or ")} runtime`;
  }
  c.memory = state.memoryOf(w, c.runtime);
  return undefined;
};

export const memory: Filter = (_s, n, _need, c, describe) => {
  if (c.memory <= n.freeMemory) return undefined;
  return describe
    ? `needs ${formatMemory(c.memory)} memory, ${formatMemory(Math.max(0, n.freeMemory))} free`
    : REJECTED;
};

export const cpu: Filter = (_s, n, need, _c, describe) => {
  if (need.w.cpuMillis <= n.freeCpu) return undefined;
  return describe ? `needs ${cores(need.w.cpuMillis)} cpu, ${cores(Math.max(0, n.freeCpu))} free` : REJECTED;
};

/** Vendor, count and `vram_min` from one group of the node; the group left fullest wins (best fit). */
export const gpu: Filter = (_s, n, need, c, describe) => {
  c.gpuGroup = -1;
  const want = need.w.gpu;
  if (!want) return undefined;
  const groups = n.node.gpus;
  let vendorSeen = false;
  let vramSeen = false;
  let vramBest = 0;
  let freeBest = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g.vendor !== want.vendor) continue;
    vendorSeen = true;
    const vram = g.vramMb ?? 0;
    if (want.vramMin !== undefined && vram < want.vramMin) {
      vramBest = Math.max(vramBest, vram);
      continue;
    }
    vramSeen = true;
    const free = n.gpuFree[i];
    freeBest = Math.max(freeBest, free);
    if (free >= want.count && (c.gpuGroup < 0 || free < n.gpuFree[c.gpuGroup])) c.gpuGroup = i;
  }
  if (c.gpuGroup >= 0) return undefined;
  if (!describe) return REJECTED;
  const wanted = `needs ${want.count} ${want.vendor} GPU${want.count === 1 ? "" : "s"}`;
  if (!vendorSeen) return `${wanted}, has none`;
  const vram = want.vramMin !== undefined ? ` with >= ${want.vramMin} MB VRAM` : "";
  if (!vramSeen) return `${wanted}${vram}, has ${vramBest > 0 ? `${vramBest} MB` : "no VRAM declared"}`;
  return `${wanted}${vram}, ${Math.max(0, freeBest)} free`;
};

/** In the order they run: cheap, decisive checks first. */
export const FILTERS: readonly Filter[] = [healthy, notDraining, pinned, labels, runtime, memory, cpu, gpu];

/** Whether `n` can take a replica; `c` then says on which runtime and GPU group. */
export function feasible(state: ClusterState, n: NodeState, need: Need, c: Candidate): boolean {
  // Capacity first: in a packed cluster it turns most nodes away, and it is the cheapest check.
  if (need.w.cpuMillis > n.freeCpu || need.minMemory > n.freeMemory) return false;
  for (const f of FILTERS) if (f(state, n, need, c, false) !== undefined) return false;
  return true;
}

/** Every reason `n` cannot take a replica (empty when it can). */
export function rejections(state: ClusterState, n: NodeState, need: Need): string[] {
  const c = newCandidate();
  const reasons: string[] = [];
  for (const f of FILTERS) {
    const reason = f(state, n, need, c, true);
    if (reason !== undefined) reasons.push(reason);
  }
  return reasons;
}

/** 1500 -> "1.5", 250 -> "0.25". */
export function cores(millis: number): string {
  return String(Math.round(millis) / 1000);
}
