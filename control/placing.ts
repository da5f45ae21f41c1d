/**
 * The control plane's side of placement: what the log applied (cached until
 * the next deploy, placement change or snapshot is applied), what of it this
 * server runs, and the plans a deploy, `orca deploy --plan` and the leader's
 * upkeep make from the registry's nodes (placements.ts).
 */

import type { ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import type { ExplainJson } from "../scheduler/explain.ts";
import { keyOf } from "./deploy_request.ts";
import {
  type Placements,
  readPlacements,
  readReplicaStates,
  type ReplicaReport,
  type ReplicaStates,
} from "./placement_store.ts";
import { explainServices, type NodeRecord, nodesOf, placeServices, replicasOn } from "./placements.ts";
import type { Store, StoredService } from "./store.ts";
import type { LocalService } from "./workloads.ts";
import { secretsStamp } from "./secret_store.ts";

/** This server as a node of a cluster. */
export interface NodeContext {
  node: string;
  members(): NodeRecord[];
  /** Whether a node answers (the leader's view); an unhealthy node's replicas move, and it gets none. */
  healthy?: (node: string) => boolean;
  /**
   * Starts `services` on `node` ahead of a deploy's commit (its `prepare`); rejects with why it cannot, and says
   * `unreachable` when the node does not answer.
   */
  prepare?: (node: string, services: LocalService[]) => Promise<"prepared" | "unreachable">;
}

/** What the upkeep changed, said in words for the logs. */
export interface Replanned {
  changed: Placements;
  reason: string;
  unplaced: string[];
}

export class Placing {
  readonly #store: Store;
  readonly #context?: NodeContext;
  #cache?: Placements;
  #states?: ReplicaStates;
  /** Per service, the other servers whose replica is ready at its current version (built when asked). */
  #ready?: Map<string, string[]>;
  #telling = false;
  /** The last report sent and when: the same one, committed but not yet applied here, is not sent again soon. */
  #told?: { text: string; at: number };

  /** Without `context` nothing is placed: every service runs here. */
  constructor(store: Store, context?: NodeContext) {
    this.#store = store;
    this.#context = context;
  }

  /** The placements the log applied. */
  applied(): Placements {
    return this.#cache ??= readPlacements((text) => this.#store.sql(text));
  }

  /** What each node said of its workloads. */
  states(): ReplicaStates {
    return this.#states ??= readReplicaStates((text) => this.#store.sql(text));
  }

  /** A deploy, a placement change, a node's report or a snapshot was applied: read them again. */
  forget(): void {
    this.#cache = undefined;
    this.#states = undefined;
    this.#ready = undefined;
  }

  /** How many replicas are placed on each node. */
  replicasByNode(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const list of Object.values(this.applied())) {
      for (const p of list) counts.set(p.node, (counts.get(p.node) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Starts `changed` on the other nodes `placements` put them on, ahead of the deploy's commit; throws naming the
   * node that cannot (nothing is deployed then). Resolves with the nodes that did not answer (`absent`: they start
   * their replicas when back, or those move once they are lost), and whether a service was placed on such nodes only
   * (`stranded`: it would serve nowhere, and the caller plans it again without them).
   */
  async prepareElsewhere(
    changed: StoredService[],
    placements: Placements,
  ): Promise<{ absent: string[]; stranded: boolean }> {
    const prepare = this.#context?.prepare;
    if (!prepare) return { absent: [], stranded: false };
    const nodes = this.others(changed, placements);
    const results = await Promise.allSettled(nodes.map((node) => prepare(node, this.local(changed, placements, node))));
    const failed = results.flatMap((r, i) => r.status === "rejected" ? [{ node: nodes[i], err: r.reason }] : []);
    const unreachable = nodes.filter((_, i) => results[i].status === "fulfilled" && results[i].value === "unreachable");
    if (failed.length === 0) {
      const stranded = changed.some((s) => {
        const on = nodesHolding(placements, keyOf(s.spec));
        return on.length > 0 && on.every((n) => unreachable.includes(n));
      });
      return { absent: unreachable, stranded };
    }
    const { node, err } = failed[0];
    const code = err instanceof OrcaError ? err.code : "unavailable";
    throw new OrcaError(code, `node ${node} cannot start the deploy's services: ${(err as Error).message ?? err}`, {
      hint: "nothing was deployed; orca deploy --plan shows where each replica would go",
      ...(err instanceof OrcaError && err.where && { where: err.where }),
    });
  }

  /** The servers other than this one that `placements` put a replica of any of `services` on. */
  others(services: StoredService[], placements: Placements): string[] {
    const nodes = services.flatMap((s) => nodesHolding(placements, keyOf(s.spec)));
    return [...new Set(nodes)].filter((n) => n !== this.#context?.node);
  }

  /**
   * The servers other than this one that run a replica of `service`: those that said it is ready at its current
   * version, and the others (still starting, or not heard from).
   */
  elsewhere(service: string): { ready: string[]; others: string[] } {
    const all = nodesHolding(this.applied(), service).filter((n) => n !== this.#context?.node);
    const ready = this.#readyNodes().get(service) ?? [];
    return { ready: all.filter((n) => ready.includes(n)), others: all.filter((n) => !ready.includes(n)) };
  }

  /** Whether `node` said its replica of `service` is ready at `version`. */
  isReady(service: string, node: string, version: number): boolean {
    const s = this.states()[service]?.[node];
    return s?.state === "ready" && s.version === version;
  }

  /**
   * What this server has to tell of its workloads (`running`: each local service's version and failure, if any),
   * against what the log holds of it; undefined when the log already says so.
   */
  report(running: { service: string; version: number; failure?: string }[]): {
    states: ReplicaReport[];
    gone: string[];
  } | undefined {
    const node = this.#context?.node;
    // Only other servers need to hear it (to route to a ready replica, to finish a drain): a lone one says nothing,
    // and writes nothing more per deploy.
    if (node === undefined || (this.#members()?.length ?? 0) < 2) return undefined;
    const held = this.states();
    const placed = this.applied();
    const mine = running.filter((r) => placed[r.service]);
    const states: ReplicaReport[] = [];
    for (const r of mine) {
      const now = held[r.service]?.[node];
      const state = r.failure === undefined ? "ready" : "failed";
      if (now?.state === state && now.version === r.version && now.message === r.failure) continue;
      states.push({
        service: r.service,
        version: r.version,
        state,
        ...(r.failure !== undefined && { message: r.failure.slice(0, 1000) }),
      });
    }
    const here = new Set(mine.map((r) => r.service));
    const gone = Object.entries(held).filter(([service, byNode]) => byNode[node] && !here.has(service)).map(([s]) => s);
    return states.length > 0 || gone.length > 0 ? { states, gone } : undefined;
  }

  /** Sends `report` what the log does not hold yet of this server's workloads (`running`), one report at a time. */
  tell(
    running: { service: string; version: number; failure?: string }[],
    report: (r: { states: ReplicaReport[]; gone: string[] }) => Promise<void>,
    log: (line: string) => void,
  ): void {
    if (this.#telling) return;
    const told = this.report(running);
    if (!told) return;
    const text = JSON.stringify(told);
    if (text === this.#told?.text && performance.now() - this.#told.at < 5_000) return;
    this.#telling = true;
    report(told).then(
      () => this.#told = { text, at: performance.now() },
      (err) => log(`replica states not reported: ${(err as Error).message ?? err}`),
    ).finally(() => this.#telling = false);
  }

  /** The other nodes that run a replica of `service`, ready ones first. */
  holders(service: string): string[] {
    const { ready, others } = this.elsewhere(service);
    return [...ready, ...others];
  }

  /** The nodes that run a replica of `service`; undefined when it is not placed (it runs on every server). */
  placedOn(service: string): string[] | undefined {
    const placements = this.applied();
    return placements[service] && nodesHolding(placements, service);
  }

  #readyNodes(): Map<string, string[]> {
    if (this.#ready) return this.#ready;
    const versions = new Map(this.#store.services().map((s) => [keyOf(s.spec), s.version]));
    const ready = new Map<string, string[]>();
    for (const [service, byNode] of Object.entries(this.states())) {
      const nodes = Object.entries(byNode).filter(([, s]) =>
        s.state === "ready" && s.version === versions.get(service)
      );
      ready.set(service, nodes.map(([n]) => n));
    }
    return this.#ready = ready;
  }

  /**
   * What `node` (default: this server) runs of `deployed`: services placed there (with the replicas placed there),
   * and unplaced ones.
   */
  local(deployed: StoredService[], placements = this.applied(), node = this.#context?.node): LocalService[] {
    // A service that references secrets runs as a workload of its own per set of their values.
    const stamped = (s: LocalService): LocalService => {
      const secrets = secretsStamp(s.spec, (text) => this.#store.sql(text));
      return secrets === undefined ? s : { ...s, secrets };
    };
    if (node === undefined) return deployed.map(stamped);
    return deployed.flatMap((s) => {
      const here = replicasOn(placements, keyOf(s.spec), node);
      if (here === undefined) return [stamped(s)];
      if (here === 0) return [];
      return [stamped(here === s.spec.replicas ? s : { ...s, here, spec: { ...s.spec, replicas: here } })];
    });
  }

  /**
   * The placements that change when `specs` is the whole desired state (throws when a replica fits nowhere);
   * undefined when this server places nothing (no cluster, or no node has told its facts).
   */
  plan(specs: ServiceSpec[], changed: ReadonlySet<string>, avoid?: ReadonlySet<string>): Placements | undefined {
    const members = this.#members();
    if (!members) return undefined;
    const known = this.#context?.healthy ?? (() => true);
    // Nodes a prepare just found not answering count as unhealthy for the deploy's own services only.
    const healthy = avoid ? (n: string) => !avoid.has(n) && known(n) : this.#context?.healthy;
    const out = placeServices(members, this.applied(), specs, { healthy, mustPlace: changed }).changed;
    return avoid ? Object.fromEntries(Object.entries(out).filter(([k]) => changed.has(k))) : out;
  }

  /** `orca deploy --plan`: the plan for `incoming`, the whole of `projects`, and every node's verdict. */
  explain(incoming: ServiceSpec[], projects: string[]): { text: string; plan: ExplainJson } {
    const named = new Set(projects);
    const kept = this.#store.services().filter((s) => !named.has(s.spec.project)).map((s) => s.spec);
    const specs = [...kept, ...incoming];
    const members = this.#members();
    if (!members) {
      throw new OrcaError("unavailable", "this server places nothing: no node of the cluster has told its facts yet", {
        retryAfter: 1,
      });
    }
    const { text, json } = explainServices(members, this.applied(), specs, this.#context?.healthy);
    return { text, plan: json };
  }

  /**
   * Plans `deployed` again with the nodes' health and drain flags as they are now: what fits is placed, the rest is
   * said; replicas leave a drained node one at a time, each once its successor is ready.
   */
  replan(deployed: StoredService[]): Replanned | undefined {
    const members = this.#members();
    if (!members) return undefined;
    const healthy = this.#context?.healthy;
    const versions = new Map(deployed.map((s) => [keyOf(s.spec), s.version]));
    const ready = (service: string, node: string) => this.isReady(service, node, versions.get(service) ?? 0);
    const specs = deployed.map((s) => s.spec);
    const { changed, plan } = placeServices(members, this.applied(), specs, { healthy, partial: true, ready });
    const unplaced = plan.unplaced.map((u) => `${u.workload}#${u.replica} fits on no node: ${u.reasons.join("; ")}`);
    if (Object.keys(changed).length === 0) return undefined;
    const where = (list: { replica: number; node: string }[] = []) =>
      list.map((p) => `#${p.replica}@${p.node.slice(0, 8)}`).join(",") || "none";
    const before = this.applied();
    const reason = Object.entries(changed).map(([service, list]) =>
      `${service} ${where(before[service])} -> ${where(list)}`
    )
      .join("; ");
    return { changed, reason, unplaced };
  }

  #members(): NodeRecord[] | undefined {
    const members = this.#context?.members();
    return members && nodesOf(members).length > 0 ? members : undefined;
  }
}

/** The nodes `placements` put a replica of `service` on, each once. */
function nodesHolding(placements: Placements, service: string): string[] {
  return [...new Set((placements[service] ?? []).map((p) => p.node))];
}
