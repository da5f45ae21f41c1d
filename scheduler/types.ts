/**
 * What the scheduler sees and what it answers: an immutable view of the
 * cluster and the workloads in, a plan with every decision explained out.
 */

import type { RuntimeKind } from "../config/mod.ts";

export type GpuVendor = "nvidia" | "amd";

/** A group of identical GPUs on a node. */
export interface GpuGroup {
  vendor: GpuVendor;
  model?: string;
  /** VRAM per GPU, in MB. */
  vramMb?: number;
  count: number;
}

export interface NodeView {
  id: string;
  /** Failure domain; nodes without one are each their own. */
  zone?: string;
  labels: Readonly<Record<string, string>>;
  capacity: { memory: number; cpuMillis: number };
  /** Used by things the plan does not manage (the node's own processes, other tenants). */
  reserved?: { memory: number; cpuMillis: number };
  gpus: readonly GpuGroup[];
  runtimes: readonly RuntimeKind[];
  /** Images already on the node. */
  images: readonly string[];
  healthy: boolean;
  draining: boolean;
}

export interface GpuNeed {
  vendor: GpuVendor;
  count: number;
  /** MB per GPU. */
  vramMin?: number;
}

export interface WorkloadView {
  /** `project/name` */
  id: string;
  project: string;
  replicas: number;
  /** Runtimes it can run on, preferred first (a service with both prefers wasm). */
  runtimes: readonly RuntimeKind[];
  memory: number;
  cpuMillis: number;
  gpu?: GpuNeed;
  placement: { node?: string; labels: Readonly<Record<string, string>> };
  image?: string;
}

/** One replica on one node. */
export interface Placement {
  workload: string;
  replica: number;
  node: string;
  runtime: RuntimeKind;
  /** Index into the node's `gpus` groups, and how many of them, for GPU workloads. */
  gpu?: { group: number; count: number };
}

export interface ClusterView {
  nodes: readonly NodeView[];
  /** What runs now. */
  placements: readonly Placement[];
}

export interface ScoreParts {
  binpack: number;
  image: number;
  locality: number;
  runtime: number;
  spread: number;
  total: number;
}

/** Why each node was or was not chosen for one replica. */
export interface ReplicaExplanation {
  replica: number;
  chosen?: string;
  rejected: { node: string; reason: string }[];
  scores: { node: string; runtime: RuntimeKind; parts: ScoreParts }[];
}

export interface Migration {
  from: Placement;
  to: Placement;
  reason: string;
}

export interface Plan {
  /** New replicas to start. */
  place: Placement[];
  /** Replicas to stop (scaled down, or their workload is gone). */
  stop: Placement[];
  /** Replicas to move: start `to`, then stop `from`. */
  migrate: Migration[];
  /** Replicas that fit nowhere, with the reasons per node. */
  unplaced: { workload: string; replica: number; reasons: string[] }[];
  /** Per workload, per replica placed in this plan (only when asked for). */
  explanations: Record<string, ReplicaExplanation[]>;
}

export interface PlanOptions {
  /** Record every node's verdict and score (for `orca deploy --plan`); off for speed. */
  explain?: boolean;
  /** Memory counted for a Wasm workload that declares none (instances are small). */
  wasmDefaultMemory?: number;
}
