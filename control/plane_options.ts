/** What a control plane is made with: where it commits changes, the runtimes it runs them on, and its node. */

import type { Forwarder } from "./forward.ts";
import type { JobTriggers } from "./jobs.ts";
import type { Change, ControlCommand } from "./machine.ts";
import type { ReplicaReport } from "./placement_store.ts";
import type { NodeContext } from "./placing.ts";
import type { DeploySummary, Store } from "./store.ts";
import type { NodeFigures } from "./rollout_store.ts";
import type { ContainerLike, WasmLike } from "./workloads.ts";
import type { ServiceSpec } from "../config/mod.ts";

/** Where changes of desired state are committed (the Raft log) before they take effect. */
export interface CommandLog {
  propose(command: ControlCommand, opts?: { serial?: boolean }): Promise<unknown>;
  /** Resolves once this member has applied everything committed (enough to plan a write on the leader). */
  caughtUp(): Promise<void>;
  /** Calls `listener` after changes the log applied (their kinds; in apply order, on every member). */
  onApplied(listener: (changed: ReadonlySet<Change>) => void): void;
}

export interface DeployResult {
  /** The deploy's id, or null when nothing changed. */
  id: number | null;
  summary: DeploySummary;
}

export interface ControlPlaneOptions {
  store: Store;
  /** Every deploy and removal is committed here; the store holds what was applied. */
  commands: CommandLog;
  wasm: WasmLike;
  /** Docker containers; absent on a node that runs Wasm only. */
  containers?: ContainerLike;
  now?: () => number;
  log?: (line: string) => void;
  /** How long an old version may finish in-flight requests after a swap. */
  drainMs?: number;
  /** How often the watchdog looks at every replica here (default 30 s). */
  watchdogMs?: number;
  /** Cron, queue and event triggers; without it only http triggers run. */
  jobs?: JobTriggers;
  /** Publishes an Orca event (the leader does; a follower sends it there). Default: the jobs' own publish. */
  publishEvent?: (name: string, data: Record<string, unknown>) => Promise<unknown>;
  /** Whether this server judges canaries and commits their outcome (the leader; default: it does). */
  leads?: () => boolean;
  /** Whether this node keeps the bytes of every deployed service (a server: default), or only of its own (a worker). */
  keepsAll?: boolean;
  /**
   * Secrets: a deploy's references are checked (`check`, where deploys are made) and a workload starts with their
   * values (`resolve`). Absent: a service that references one does not start.
   */
  secrets?: { resolve(spec: ServiceSpec): Promise<ServiceSpec>; check?(specs: ServiceSpec[]): Promise<void> };
  /** Brings a module or a mounted file this node lacks from a peer (verified by its hash) and stores it. */
  fetchMissing?: (kind: "module" | "blob", hash: string) => Promise<void>;
  /**
   * This server as a node of a cluster: deploys place replicas with the scheduler on the registry's servers, this
   * one runs those placed on it, and requests for the others go to a server that has one. Absent: every service
   * runs here.
   */
  cluster?: NodeContext & {
    forwarder: Forwarder;
    /** Tells the log (through the leader) what this server's workloads are: ready at a version, or failed. */
    report(report: { states: ReplicaReport[]; gone: string[] }): Promise<void>;
    /** What `node` measured of a canary's versions of `service` (the leader sums them); undefined: it did not say. */
    rolloutFigures?(node: string, service: string): Promise<Record<string, NodeFigures> | undefined>;
  };
}
