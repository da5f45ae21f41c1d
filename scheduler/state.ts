/**
 * The planner's working copy of the cluster: free resources per node, GPUs
 * free per group, and where each workload's replicas are (for spread and
 * locality). Built from the immutable view; the view itself is never changed.
 */

import type { RuntimeKind } from "../config/mod.ts";
import type { NodeView, Placement, WorkloadView } from "./types.ts";

export interface NodeState {
  node: NodeView;
  zone: string;
  freeMemory: number;
  freeCpu: number;
  gpuFree: number[];
  images: Set<string>;
  /** Replicas per workload id on this node. */
  replicas: Map<string, number>;
  /** Replicas per project on this node. */
  projects: Map<string, number>;
  /**
   * Nodes with the same class score the same while empty: the planner scores
   * only the first empty node of each class (ties go to the lower id anyway).
   */
  classKey: string;
}

export class ClusterState {
  readonly nodes: NodeState[];
  readonly byId = new Map<string, NodeState>();
  /** Replicas per workload per zone. */
  readonly zoneCounts = new Map<string, Map<string, number>>();
  readonly #wasmDefaultMemory: number;

  constructor(nodes: readonly NodeView[], wasmDefaultMemory: number) {
    this.#wasmDefaultMemory = wasmDefaultMemory;
    // In id order, so the first empty node of a class is the one a tie would pick.
    const sorted = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.nodes = sorted.map((node) => ({
      node,
      zone: node.zone ?? node.labels.zone ?? `node:${node.id}`,
      freeMemory: node.capacity.memory - (node.reserved?.memory ?? 0),
      freeCpu: node.capacity.cpuMillis - (node.reserved?.cpuMillis ?? 0),
      gpuFree: node.gpus.map((g) => g.count),
      images: new Set(node.images),
      replicas: new Map(),
      projects: new Map(),
      classKey: JSON.stringify([
        node.zone ?? node.labels.zone ?? `node:${node.id}`,
        node.labels,
        node.capacity,
        node.reserved ?? null,
        node.gpus,
        node.runtimes,
        [...node.images].sort(),
        node.healthy,
        node.draining,
      ]),
    }));
    for (const n of this.nodes) this.byId.set(n.node.id, n);
  }

  /** Memory a replica counts for on `runtime`. */
  memoryOf(w: WorkloadView, runtime: RuntimeKind): number {
    return w.memory > 0 ? w.memory : runtime === "wasm" ? this.#wasmDefaultMemory : 0;
  }

  add(w: WorkloadView, p: Placement): void {
    this.#apply(w, p, 1);
  }

  remove(w: WorkloadView, p: Placement): void {
    this.#apply(w, p, -1);
  }

  zoneCount(workload: string, zone: string): number {
    return this.zoneCounts.get(workload)?.get(zone) ?? 0;
  }

  #apply(w: WorkloadView, p: Placement, sign: 1 | -1): void {
    const n = this.byId.get(p.node);
    if (!n) return;
    n.freeMemory -= sign * this.memoryOf(w, p.runtime);
    n.freeCpu -= sign * w.cpuMillis;
    if (p.gpu) n.gpuFree[p.gpu.group] -= sign * p.gpu.count;
    bump(n.replicas, w.id, sign);
    bump(n.projects, w.project, sign);
    let zones = this.zoneCounts.get(w.id);
    if (!zones) this.zoneCounts.set(w.id, zones = new Map());
    bump(zones, n.zone, sign);
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const v = (map.get(key) ?? 0) + by;
  if (v === 0) map.delete(key);
  else map.set(key, v);
}
