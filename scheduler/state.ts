/**
 * The planner's working copy of the cluster: free resources per node, GPUs
 * free per group, and where each workload's replicas are (for spread and
 * locality). Built from the immutable view; the view itself is never changed.
 */

import type { RuntimeKind } from "../config/mod.ts";
import type { NodeView, Placement, WorkloadView } from "./types.ts";

export const DEFAULT_WASM_MEMORY = 4 * 2 ** 20;
export const DEFAULT_CONTAINER_MEMORY = 256 * 2 ** 20;

export interface NodeState {
  readonly node: NodeView;
  readonly zone: string;
  freeMemory: number;
  freeCpu: number;
  readonly gpuFree: number[];
  readonly images: ReadonlySet<string>;
  /** Replicas per workload id on this node. */
  readonly replicas: Map<string, number>;
  /** Replicas per project on this node. */
  readonly projects: Map<string, number>;
  /** Replicas on this node. */
  placed: number;
  /** Nothing was ever counted on it: it is as the view describes it. */
  pristine: boolean;
  /**
   * Pristine nodes of one class filter and score alike, so the planner ranks
   * only the first of each (the lower id, which a tie would pick anyway).
   */
  readonly classKey: string;
}

/** The failure domain of a node. */
export function zoneOf(node: NodeView): string {
  return node.zone ?? node.labels.zone ?? `node:${node.id}`;
}

export class ClusterState {
  /** In id order: scanning in this order makes the lower id win ties. */
  readonly nodes: readonly NodeState[];
  readonly byId = new Map<string, NodeState>();
  /** Nodes a `placement.node` value names: by id or by name, exactly. */
  readonly byPin = new Map<string, NodeState[]>();
  /** Replicas per workload per zone. */
  readonly #zoneCounts = new Map<string, Map<string, number>>();
  readonly #wasmMemory: number;
  readonly #containerMemory: number;

  constructor(nodes: readonly NodeView[], defaults: { wasmMemory: number; containerMemory: number }) {
    this.#wasmMemory = defaults.wasmMemory;
    this.#containerMemory = defaults.containerMemory;
    const sorted = [...nodes].sort((a, b) => compareIds(a.id, b.id));
    this.nodes = sorted.map((node) => ({
      node,
      zone: zoneOf(node),
      freeMemory: node.capacity.memory - (node.reserved?.memory ?? 0),
      freeCpu: node.capacity.cpuMillis - (node.reserved?.cpuMillis ?? 0),
      gpuFree: node.gpus.map((g, i) => g.count - (node.reserved?.gpus?.[i] ?? 0)),
      images: new Set(node.images),
      replicas: new Map(),
      projects: new Map(),
      placed: 0,
      pristine: true,
      classKey: classKey(node),
    }));
    for (const n of this.nodes) {
      this.byId.set(n.node.id, n);
      for (const key of new Set([n.node.id, n.node.name ?? n.node.id])) {
        const list = this.byPin.get(key);
        if (list) list.push(n);
        else this.byPin.set(key, [n]);
      }
    }
  }

  /** Memory one replica counts for on `runtime`. */
  memoryOf(w: WorkloadView, runtime: RuntimeKind): number {
    if (w.memory > 0) return w.memory;
    return runtime === "wasm" ? this.#wasmMemory : this.#containerMemory;
  }

  add(w: WorkloadView, p: Placement): void {
    this.#apply(w, p, 1);
  }

  remove(w: WorkloadView, p: Placement): void {
    this.#apply(w, p, -1);
  }

  /**
   * Resources only, no spread or locality: a replica that has to move keeps
   * its room where it runs until its replacement has started.
   */
  hold(w: WorkloadView, p: Placement): void {
    const n = this.byId.get(p.node);
    if (n) this.#resources(n, w, p, 1);
  }

  release(w: WorkloadView, p: Placement): void {
    const n = this.byId.get(p.node);
    if (n) this.#resources(n, w, p, -1);
  }

  /** Replicas of `workload` per zone (absent while it has none). */
  zoneCounts(workload: string): ReadonlyMap<string, number> | undefined {
    return this.#zoneCounts.get(workload);
  }

  #apply(w: WorkloadView, p: Placement, sign: 1 | -1): void {
    const n = this.byId.get(p.node);
    if (!n) return;
    this.#resources(n, w, p, sign);
    n.placed += sign;
    bump(n.replicas, w.id, sign);
    bump(n.projects, w.project, sign);
    let zones = this.#zoneCounts.get(w.id);
    if (!zones) this.#zoneCounts.set(w.id, zones = new Map());
    bump(zones, n.zone, sign);
  }

  #resources(n: NodeState, w: WorkloadView, p: Placement, sign: 1 | -1): void {
    n.pristine = false;
    n.freeMemory -= sign * this.memoryOf(w, p.runtime);
    n.freeCpu -= sign * w.cpuMillis;
    if (p.gpu && p.gpu.group >= 0 && p.gpu.group < n.gpuFree.length) n.gpuFree[p.gpu.group] -= sign * p.gpu.count;
  }
}

/** Everything filters and scores read from a node, and nothing else (only checked fields). */
function classKey(n: NodeView): string {
  const r = n.reserved;
  return JSON.stringify([
    zoneOf(n),
    Object.entries(n.labels).sort(),
    n.capacity.memory,
    n.capacity.cpuMillis,
    r ? [r.memory, r.cpuMillis, r.gpus ?? []] : null,
    n.gpus.map((g) => [g.vendor, g.count, g.vramMb ?? 0]),
    n.runtimes,
    [...n.images].sort(),
    n.healthy,
    n.draining,
  ]);
}

/** Plain code-unit order: the same on every machine and locale. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const v = (map.get(key) ?? 0) + by;
  if (v === 0) map.delete(key);
  else map.set(key, v);
}
