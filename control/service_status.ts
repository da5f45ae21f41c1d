/**
 * What `orca status` shows of each deployed service: its state, counters and
 * latest cron run where it runs here, and where its replicas are placed.
 */

import { routesOf } from "../proxy/mod.ts";
import type { HttpServing, Runtime, WorkloadHandle } from "../runtime/mod.ts";
import { keyOf } from "./deploy_request.ts";
import type { JobTriggers } from "./jobs.ts";
import type { Placements, ReplicaStates } from "./placement_store.ts";
import type { StoredService } from "./store.ts";
import { crashLoopOf, type ReplicaView } from "./watchdog.ts";
import type { Active } from "./workloads.ts";

export interface ServiceStatus {
  project: string;
  name: string;
  runtime: string;
  routes: string[];
  state: string;
  instances: number;
  version: number;
  updatedAt: number;
  requests: number;
  errors: number;
  module?: string;
  message?: string;
  /**
   * Where its replicas run (a placed service; the others run on every server), and what each server said of its
   * workload: `ready` at this version, `failed` (with why), or `starting` (nothing said of this version yet).
   */
  placements?: { replica: number; node: string; state: "ready" | "failed" | "starting"; message?: string }[];
  /** This server's replicas as its watchdog sees them: restarts, crash loops, readiness. */
  replicas?: ReplicaView[];
  /** Next firing of each cron trigger. */
  nextRuns?: { trigger: string; at?: number }[];
  /** The latest cron run. */
  lastRun?: { scheduledAt: number; status: string; exitCode?: number; durationMs: number };
}

export interface StatusSources {
  services: StoredService[];
  placements: Placements;
  states: ReplicaStates;
  /** This server's node id. */
  node?: string;
  /** The workloads that run here. */
  active: ReadonlyMap<string, Active>;
  runtime(handle: WorkloadHandle): Runtime & HttpServing;
  /** The watchdog's view of a workload's replicas. */
  replicas?(handle: WorkloadHandle): ReplicaView[];
  jobs?: JobTriggers;
}

export async function serviceStatuses(deps: StatusSources): Promise<ServiceStatus[]> {
  const out: ServiceStatus[] = [];
  const placements = deps.placements;
  for (const stored of deps.services) {
    const { spec, version, updatedAt } = stored;
    const key = keyOf(spec);
    const local = deps.active.get(key);
    const placed = placements[key]?.map(({ replica, node }) => {
      // This server's own: as it is here now; the others': as they told the log.
      if (node === deps.node && local) {
        const state = local.handle ? "ready" as const : "failed" as const;
        return { replica, node, state, ...(local.failure !== undefined && { message: local.failure }) };
      }
      const said = deps.states[key]?.[node];
      if (!said || said.version !== version) return { replica, node, state: "starting" as const };
      return { replica, node, state: said.state, ...(said.message !== undefined && { message: said.message }) };
    });
    const routes = routesOf(spec).map((r) => r.host ? `${r.host}${r.pattern}` : r.pattern);
    const base = {
      project: spec.project,
      name: spec.name,
      runtime: spec.runtime,
      routes,
      version,
      updatedAt,
      ...(spec.module_hash && { module: spec.module_hash }),
      ...(placed && { placements: placed }),
    };
    const a = deps.active.get(key);
    if (!a) {
      const nodes = [...new Set(placed?.map((p) => p.node))].join(", ");
      out.push({ ...base, state: "remote", instances: 0, requests: 0, errors: 0, message: `runs on ${nodes}` });
      continue;
    }
    if (!a.handle) {
      out.push({ ...base, state: "failed", instances: 0, requests: 0, errors: 0, message: a.failure });
      continue;
    }
    const runtime = deps.runtime(a.handle);
    // Container stats take the engine a second or two: status shows Wasm counters only.
    const [st, stats] = await Promise.all([
      runtime.status(a.handle).catch((err) => ({ state: "failed", instances: 0, message: (err as Error).message })),
      a.handle.runtime === "wasm" ? runtime.stats(a.handle) : Promise.resolve({ requests: 0, errors: 0 }),
    ]);
    const replicas = deps.replicas?.(a.handle) ?? [];
    // A replica in a crash loop says so first: the service's own state would say "running" between its crashes.
    const looping = crashLoopOf(replicas);
    const nextRuns = deps.jobs?.nextRuns(key) ?? [];
    const last = deps.jobs?.runs.runs(key, 1)[0];
    out.push({
      ...base,
      ...(nextRuns.length > 0 && { nextRuns }),
      ...(last && {
        lastRun: {
          scheduledAt: last.scheduledAt,
          status: last.status,
          durationMs: last.durationMs,
          ...(last.exitCode !== undefined && { exitCode: last.exitCode }),
        },
      }),
      state: looping ? "crashloop" : st.state,
      instances: st.instances,
      requests: stats.requests,
      errors: stats.errors,
      ...(replicas.some((r) => r.state !== "running" || r.restarts > 0) && { replicas }),
      ...(looping ? { message: looping } : st.message && { message: st.message }),
    });
  }
  return out;
}
