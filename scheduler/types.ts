/**
 * What the scheduler sees and what it answers: an immutable view of the
 * cluster and the workloads in, a plan with every decision explained out.
 */

import type { GpuRequest, RuntimeKind } from "../config/mod.ts";

export type GpuVendor = GpuRequest["vendor"];

/** A group of identical GPUs on a node; a replica's GPUs all come from one group. */
export interface GpuGroup {
  vendor: GpuVendor;
  model?: string;
  /** VRAM per GPU, in MB. */
  vramMb?: number;
  count: number;
}

/** Memory in bytes, CPU in thousandths of a core. */
export interface Amounts {
  memory: number;
  cpuMillis: number;
}

export interface NodeView {
  /** The node's identity (what placements name). */
  id: string;
  /** Its name in cluster.toml; `placement.node` matches the id or the name, exactly. */
  name?: string;
  /** Failure domain; defaults to `labels.zone`, and a node with neither is a domain of its own. */
  zone?: string;
  labels: Readonly<Record<string, string>>;
  capacity: Readonly<Amounts>;
  /**
   * Taken by what the plan does not manage (the node's own processes, other
   * tenants); per GPU group, GPUs in use outside Orca. What the plan manages
   * is counted from `ClusterView.placements`, so the two can never disagree.
   */
  reserved?: Readonly<Amounts & { gpus?: readonly number[] }>;
  gpus: readonly GpuGroup[];
  /** Runtimes present: `container` only where a Docker engine answers. */
  runtimes: readonly RuntimeKind[];
  /** Images already pulled. */
  images: readonly string[];
  healthy: boolean;
  draining: boolean;
}

export interface GpuNeed {
  vendor: GpuVendor;
  count: number;
  /** Minimum VRAM per GPU, in MB. */
  vramMin?: number;
}

export interface WorkloadView {
  /** `project/name` */
  id: string;
  project: string;
  replicas: number;
  /** Runtimes it can run on; one that can do both runs as Wasm wherever a node offers it. */
  runtimes: readonly RuntimeKind[];
  /** Bytes per replica; 0 when undeclared (then `PlanOptions` defaults count). */
  memory: number;
  cpuMillis: number;
  gpu?: GpuNeed;
  placement: { node?: string; labels: Readonly<Record<string, string>> };
  /** The container image (for the image-cache bonus). */
  image?: string;
}

/** One replica on one node. */
export interface Placement {
  workload: string;
  replica: number;
  node: string;
  runtime: RuntimeKind;
  /** For GPU workloads: which of the node's GPU groups, and how many of its GPUs. */
  gpu?: { group: number; count: number };
}

export interface ClusterView {
  nodes: readonly NodeView[];
  /** What runs now. */
  placements: readonly Placement[];
}

/**
 * A feasible node's rank for one replica. Spread decides first (fewest
 * replicas of the workload in the zone, then on the node); `total` (the sum of
 * the other parts, see score.ts) breaks the tie; then the lower node id.
 */
export interface ScoreParts {
  /** Replicas of the workload already in the node's zone, and on the node. */
  zoneReplicas: number;
  nodeReplicas: number;
  fit: number;
  waste: number;
  image: number;
  locality: number;
  runtime: number;
  gpu: number;
  total: number;
}

/** Why one replica went where it went: every node's verdict. */
export interface ReplicaExplanation {
  replica: number;
  /** `place` a new replica, or `migrate` a running one. */
  action: "place" | "migrate";
  chosen?: string;
  /** Each infeasible node with every reason it cannot take the replica. */
  rejected: { node: string; reasons: string[] }[];
  /** Each feasible node, best first. */
  scores: { node: string; runtime: RuntimeKind; parts: ScoreParts }[];
}

export interface Migration {
  from: Placement;
  to: Placement;
  reason: string;
}

export interface Stop {
  placement: Placement;
  reason: string;
}

export interface Unplaced {
  workload: string;
  replica: number;
  /** For a running replica that had to move and could not: where it is (it stays on a draining node). */
  from?: Placement;
  /** `node: reason; reason` for every node. */
  reasons: string[];
}

/** Input the scheduler could not use (it is skipped, never thrown about). */
export interface Problem {
  workload?: string;
  node?: string;
  reason: string;
}

/**
 * Carried out in this order: stops, then placements, then migrations (each
 * starts `to` before it stops `from`). Room freed by stops is reused within
 * the plan; room held by migrating replicas is not.
 */
export interface Plan {
  /** New replicas to start. */
  placements: Placement[];
  /** Running replicas to move: start `to`, then stop `from`. */
  migrations: Migration[];
  /** Replicas to stop (scaled down, their workload is gone). */
  stops: Stop[];
  /** Replicas that fit nowhere, with every node's reasons. */
  unplaced: Unplaced[];
  problems: Problem[];
  /** Per workload, one entry per replica placed or migrated (when `explain` is on). */
  explanations: Record<string, ReplicaExplanation[]>;
}

export interface PlanOptions {
  /** Record every node's verdict and score (for `orca deploy --plan`); off for speed. */
  explain?: boolean;
  /** Memory counted for a Wasm replica that declares none (default 4 MiB: instances are small). */
  wasmDefaultMemory?: number;
  /** Memory counted for a container replica that declares none (default 256 MiB). */
  containerDefaultMemory?: number;
}
