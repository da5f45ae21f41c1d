/**
 * Where each replica runs. A deploy's plan comes from the scheduler
 * (scheduler/plan.ts): the registry's servers are the nodes it sees, the
 * placements the log applied are what runs now, and the services after the
 * deploy are the workloads. The leader plans; the deploy command carries the
 * placements of every service whose placements changed, and the state
 * machine stores them (the `placements` table, in snapshots too). Each
 * server runs the replicas placed on it and forwards the others' requests.
 *
 * Services that only run jobs (cron, queue, event triggers) are not placed:
 * the leader runs their jobs, so every server keeps them ready.
 */

import type { ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { routesOf } from "../proxy/mod.ts";
import { type ExplainJson, explainPlan } from "../scheduler/explain.ts";
import { workloadFromService } from "../scheduler/from_config.ts";
import { plan } from "../scheduler/plan.ts";
import type { ClusterView, NodeView, Placement, Plan } from "../scheduler/types.ts";
import type { NodeFacts } from "./node_facts.ts";
import type { PlacementRecord, Placements } from "./placement_store.ts";

/** A server in the registry, as far as placing needs it. */
export interface NodeRecord {
  id: string;
  address: string;
  facts?: NodeFacts;
  drain: boolean;
}

/**
 * Whether the scheduler places `spec`'s replicas: it serves (routes, a domain), runs jobs (cron, queue, event
 * triggers: the leader has the node that runs it run each one), or is a container. A Wasm service with no trigger
 * does nothing, and is placed nowhere.
 */
export function isPlaced(spec: ServiceSpec): boolean {
  return routesOf(spec).length > 0 || spec.triggers.length > 0 || spec.runtime === "container";
}

/**
 * The registry's nodes as the scheduler sees them; one that has not told its facts yet, and a server started with
 * `--no-workloads`, are left out.
 */
export function nodesOf(members: readonly NodeRecord[], healthy: (node: string) => boolean = () => true): NodeView[] {
  return members.filter((m) => m.facts && !m.facts.noWorkloads).map((m) => {
    const facts = m.facts!;
    return {
      id: m.id,
      name: facts.name ?? m.address,
      ...(facts.labels.zone !== undefined && { zone: facts.labels.zone }),
      labels: { ...facts.labels },
      capacity: { ...facts.capacity },
      gpus: facts.gpus.map((g) => ({
        vendor: g.vendor,
        count: g.count,
        ...(g.model !== undefined && { model: g.model }),
        ...(g.vram !== undefined && { vramMb: g.vram }),
      })),
      runtimes: facts.runtimes ?? ["wasm"],
      images: [],
      healthy: healthy(m.id),
      draining: m.drain,
    };
  });
}

/** The view the scheduler plans from: the nodes, and the replicas running now. */
export function clusterView(
  members: readonly NodeRecord[],
  current: Placements,
  healthy?: (node: string) => boolean,
): ClusterView {
  const placements: Placement[] = Object.entries(current).flatMap(([workload, list]) =>
    list.map((p) => ({ workload, ...p }))
  );
  return { nodes: nodesOf(members, healthy), placements };
}

export interface PlanOutcome {
  /** The placements of every service they changed for (removed services: an empty list). */
  changed: Placements;
  plan: Plan;
}

export interface PlaceOptions {
  /** Whether a node answers (default: all do): an unhealthy node's replicas move, and it gets none. */
  healthy?: (node: string) => boolean;
  /** Place what fits and leave the rest unplaced (in `plan.unplaced`), rather than fail the whole plan. */
  partial?: boolean;
  /**
   * Fail only when replicas of these services (a deploy's) fit nowhere; others that fit nowhere stay where they are
   * (a deploy never fails for a service it does not touch).
   */
  mustPlace?: ReadonlySet<string>;
  /**
   * Moves replicas off nodes that still answer (a drain) one at a time, with no request lost: a new replica is added
   * first, and the old one stops only once every other replica of its service is `ready` (a node said so). Without
   * it, a move is made at once (what a deploy does before anything starts).
   */
  ready?: (service: string, node: string) => boolean;
}

/**
 * Plans `services` (the whole desired state after a deploy) on the registry's nodes, keeping what runs where it
 * can. A replica that fits nowhere fails the whole plan, naming every node's reason.
 */
export function placeServices(
  members: readonly NodeRecord[],
  current: Placements,
  services: readonly ServiceSpec[],
  opts: PlaceOptions = {},
): PlanOutcome {
  const placed = services.filter(isPlaced);
  const view = clusterView(members, withoutGone(current, placed), opts.healthy);
  const result = plan(view, placed.map(workloadFromService));
  const blocking = opts.partial ? [] : result.unplaced.filter((u) => opts.mustPlace?.has(u.workload) ?? true);
  if (blocking.length > 0) {
    const lines = blocking.map((u) => `${u.workload} replica ${u.replica}: ${u.reasons.join("; ")}`);
    // Kept out only by nodes that do not answer now (an offline worker it is pinned to): it may fit once they do.
    const waiting = blocking.every((u) => u.reasons.some((r) => /: unhealthy(;|$)/.test(r)));
    throw new OrcaError(
      waiting ? "unavailable" : "conflict",
      `${lines.length} replica(s) fit on no node: ${lines.join(" | ")}`,
      {
        hint: waiting
          ? "a node it needs does not answer; deploy again once it is back (orca nodes)"
          : "orca deploy --plan shows every node's verdict; free room, add a node, or relax the placement",
        ...(waiting && { retryAfter: 5 }),
      },
    );
  }
  const next = new Map<string, PlacementRecord[]>();
  for (const [service, list] of Object.entries(current)) next.set(service, [...list]);
  const drop = (p: Placement) => {
    const list = next.get(p.workload) ?? [];
    next.set(p.workload, list.filter((x) => !(x.replica === p.replica && x.node === p.node)));
  };
  const add = (p: Placement) => next.set(p.workload, [...(next.get(p.workload) ?? []), record(p)]);
  const { healthy = () => true, ready } = opts;
  const draining = new Set(members.filter((m) => m.drain).map((m) => m.id));
  // A service's replicas leave a node that answers one at a time: while one waits for its successor to be ready, no
  // other of that service starts to move (other services' do: one stuck move holds up only its own service).
  const leaving = new Set<string>();
  for (const s of result.stops) {
    const p = s.placement;
    if (ready && draining.has(p.node) && healthy(p.node)) {
      const rest = (next.get(p.workload) ?? []).filter((x) => !(x.replica === p.replica && x.node === p.node));
      leaving.add(p.workload);
      if (!rest.every((x) => ready(p.workload, x.node))) continue;
    }
    drop(p);
  }
  for (const m of result.migrations) {
    if (!ready || !healthy(m.from.node)) {
      drop(m.from);
      add(m.to);
    } else if (!leaving.has(m.to.workload)) {
      // Its successor first, as one more replica; the next plan stops the one that has to leave once it is ready.
      leaving.add(m.to.workload);
      const used = [
        ...(next.get(m.to.workload) ?? []),
        ...result.placements.filter((p) => p.workload === m.to.workload),
      ];
      add({ ...m.to, replica: Math.max(-1, ...used.map((p) => p.replica)) + 1 });
    }
  }
  for (const p of result.placements) add(p);
  const keep = new Set(placed.map((s) => `${s.project}/${s.name}`));
  const changed: Placements = {};
  for (const [service, list] of next) {
    const wanted = keep.has(service) ? list.sort((a, b) => a.replica - b.replica) : [];
    if (JSON.stringify(wanted) !== JSON.stringify(current[service] ?? [])) changed[service] = wanted;
  }
  return { changed, plan: result };
}

/** What `orca deploy --plan` prints: the plan for `services` and every node's verdict; nothing changes. */
export function explainServices(
  members: readonly NodeRecord[],
  current: Placements,
  services: readonly ServiceSpec[],
  healthy?: (node: string) => boolean,
): { text: string; json: ExplainJson } {
  const placed = services.filter(isPlaced);
  const { text, json } = explainPlan(
    clusterView(members, withoutGone(current, placed), healthy),
    placed.map(workloadFromService),
  );
  return { text, json };
}

/** The replicas of `key` placed on `node`; undefined when the service is not placed (it runs on every server). */
export function replicasOn(placements: Placements, key: string, node: string): number | undefined {
  const list = placements[key];
  if (!list) return undefined;
  return list.filter((p) => p.node === node).length;
}

/** Placements of services still deployed (the scheduler stops the others; their rows go with the deploy). */
function withoutGone(current: Placements, placed: readonly ServiceSpec[]): Placements {
  const keys = new Set(placed.map((s) => `${s.project}/${s.name}`));
  return Object.fromEntries(Object.entries(current).filter(([k]) => keys.has(k)));
}

function record(p: Placement): PlacementRecord {
  return { replica: p.replica, node: p.node, runtime: p.runtime, ...(p.gpu && { gpu: p.gpu }) };
}
