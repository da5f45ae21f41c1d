/**
 * The control plane: turns deploys and removals into commands on the log, and
 * keeps this node's workloads in line with what the log applied. A deploy
 * swaps versions without dropping a request: its new versions are compiled
 * and warm before it commits, routes move to them once it is applied, and the
 * old ones finish their in-flight requests.
 */

import type { ServiceSpec } from "../config/mod.ts";
import { routesOf, RouteTable } from "../proxy/mod.ts";
import { AccessLog } from "../proxy/access_log.ts";
import type { HttpContext } from "../runtime/mod.ts";
import {
  checkRunnable,
  deployEvents,
  type DeployRequest,
  describeSummary,
  diffDeploy,
  keyOf,
  requester,
  resolveKey,
  splitKey,
  validateRequest,
} from "./deploy_request.ts";
import { planRedeploy, planRollback } from "./rollback.ts";
import { highestVersion, UnusedCollector } from "./history.ts";
import type { JobTriggers } from "./jobs.ts";
import type { Placements } from "./placement_store.ts";
import { Placing } from "./placing.ts";
import { type ServiceStatus, serviceStatuses } from "./service_status.ts";
import type { ExplainJson } from "../scheduler/explain.ts";
import type { DeployRecord, DeploySummary, Store, StoredService } from "./store.ts";
import { bringMissing } from "./missing.ts";
import { ReplicaOps } from "./replica_ops.ts";
import { Warm } from "./warm.ts";
import type { CommandLog, ControlPlaneOptions, DeployResult } from "./plane_options.ts";
import { crashLoopOf, Watchdog } from "./watchdog.ts";
import { Rollouts, splitCanaries } from "./rollouts.ts";
import { canaryServices } from "./rollout_store.ts";
import { Serving } from "./serving.ts";
import { type ContainerLike, type LocalService, Workloads } from "./workloads.ts";

export class ControlPlane {
  readonly #store: Store;
  readonly #commands: CommandLog;
  readonly #containers?: ContainerLike;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #jobs?: JobTriggers;
  readonly #publishEvent?: (name: string, data: Record<string, unknown>) => Promise<unknown>;
  readonly #fetchMissing?: (kind: "module" | "blob", hash: string) => Promise<void>;
  readonly #secrets: ControlPlaneOptions["secrets"];
  readonly #workloads: Workloads;
  /** Restarts replicas that died, runs their probes, keeps dead ones out of the routes. */
  readonly watchdog: Watchdog;
  /** Canaries under way: their share of requests, what they measure, the leader's verdicts. */
  readonly rollouts: Rollouts;
  readonly #serving: Serving;
  readonly #cluster?: ControlPlaneOptions["cluster"];
  readonly #placing: Placing;
  /** Exec, stats, logs and jobs of the replicas this node runs. */
  readonly ops: ReplicaOps;
  /** What this node's proxy answered, one JSON line per request (`orca logs --access`). */
  readonly access = new AccessLog();
  readonly #keepsAll: boolean;
  readonly #collector: UnusedCollector;
  /** Where replicas are placed, and what the nodes said of them. */
  get placing(): Placing {
    return this.#placing;
  }
  #replanning = false;
  /** New versions a deploy made ahead, by workload id, for the convergence after it commits to take. */
  readonly #warm: Warm;
  /** Deploys and removals, one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Convergences to the applied state, one at a time; each reads the latest state. */
  #converging: Promise<void> = Promise.resolve();
  #restored = false;

  constructor(opts: ControlPlaneOptions) {
    this.#store = opts.store;
    this.#commands = opts.commands;
    this.#containers = opts.containers;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? (() => {});
    this.#jobs = opts.jobs;
    this.#fetchMissing = opts.fetchMissing;
    this.#secrets = opts.secrets;
    this.#cluster = opts.cluster;
    this.#keepsAll = opts.keepsAll ?? true;
    this.#collector = new UnusedCollector(opts.store, this.#now, this.#log);
    this.#placing = new Placing(opts.store, opts.cluster);
    this.#publishEvent = opts.publishEvent ?? (opts.jobs && ((name, data) => opts.jobs!.emit(name, data)));
    this.#workloads = new Workloads({
      wasm: opts.wasm,
      ...(opts.containers && { containers: opts.containers }),
      log: this.#log,
      drainMs: opts.drainMs ?? 10_000,
      ...(opts.secrets && { resolve: (spec: ServiceSpec) => opts.secrets!.resolve(spec) }),
    });
    this.#warm = new Warm(this.#workloads, this.#log);
    this.watchdog = new Watchdog({
      workloads: this.#workloads,
      ...(opts.watchdogMs !== undefined && { intervalMs: opts.watchdogMs }),
      log: this.#log,
      emit: (name, data) => this.emit(name, data),
      now: this.#now,
      startAgain: (service) => this.#startAgain(service),
    });
    this.rollouts = new Rollouts({
      store: opts.store,
      commands: opts.commands,
      leads: opts.leads ?? (() => true),
      now: this.#now,
      log: this.#log,
      emit: (name, data) => this.emit(name, data),
      note: (service, text) => this.watchdog.note(service, text),
      ...(opts.cluster?.rolloutFigures && { remote: (service: string) => this.#askNodes(service) }),
    });
    this.#serving = new Serving(this.#workloads, this.watchdog, this.#placing, this.rollouts, opts.cluster?.forwarder);
    this.ops = new ReplicaOps(this.#workloads, this.#placing, (service) => this.resolve(service), this.watchdog);
    opts.commands.onApplied((changed) => {
      const moved = changed.has("deploy") || changed.has("place") || changed.has("snapshot") ||
        changed.has("rollout-end");
      if (moved) this.rollouts.changed();
      if (moved || changed.has("replica-states")) this.#placing.forget();
      // Only deploys, placements, secrets (and a snapshot, which may hold any) change what runs here.
      if ((moved || changed.has("secret-set")) && this.#restored) this.#converge();
    });
  }

  /** Publishes an Orca event (`orca.service.deployed`, ...) in the background; never fails the caller. */
  emit(name: string, data: Record<string, unknown>): void {
    this.#publishEvent?.(name, data).catch((err) => this.#log(`event ${name} not published: ${err.message ?? err}`));
  }

  get routes(): RouteTable {
    return this.#workloads.routes;
  }

  /**
   * Tells the log what this server's workloads are, when it does not hold that yet (after each convergence, and
   * every second: a report that did not get through is sent again).
   */
  reportReplicas(): void {
    const report = this.#cluster?.report;
    if (!report) return;
    // A replica in a crash loop is reported failed: other servers forward to ready ones first, and say why.
    const running = [...this.#workloads.active].filter(([, a]) => !a.stored.canary).map(([service, a]) => {
      const loop = a.handle && crashLoopOf(this.watchdog.view(a.handle));
      const failure = a.failure ?? (loop ? `crash loop: ${loop}` : undefined);
      return { service, version: a.stored.version, ...(failure !== undefined && { failure }) };
    });
    this.#placing.tell(running, report, this.#log);
  }

  /** Brings every service of the applied state up; one that fails does not stop the others. */
  async restore(): Promise<void> {
    this.#restored = true;
    await this.#converge();
    for (const [key, a] of this.#workloads.active) {
      if (!a.failure) continue;
      this.#log(`restore: ${key} failed to start: ${a.failure}`);
      this.emit("orca.service.failed", { service: key, error: a.failure });
    }
    await this.#workloads.removeOrphans();
    this.#log(`restored ${this.#workloads.active.size} service(s)`);
    this.watchdog.start();
  }

  /** Starts again a workload that failed to start here, in turn with convergences; undefined once it runs. */
  #startAgain(service: string): Promise<string | undefined> {
    const run = this.#converging.then(async () => {
      const still = await this.#workloads.startAgain(service);
      if (still === undefined) {
        this.#applyJobs(this.#store.services());
        this.reportReplicas();
      }
      return still;
    });
    this.#converging = run.then(() => {}, () => {});
    return run;
  }

  /** Brings the workloads in line with the applied state, after what is already under way. */
  #converge(): Promise<void> {
    const run = this.#converging.then(async () => {
      const deployed = this.#store.services();
      // A canary runs beside its service's version, on the nodes that run that one.
      const canaries = canaryServices((text) => this.#store.sql(text));
      const desired = this.#placing.local([...deployed, ...canaries]);
      // Every server keeps the bytes of every deployed service, placed here or not: a replica that moves here when
      // its server is lost finds them, even if that server was the only one with them. A worker fetches its own.
      await this.#bringMissing((this.#keepsAll ? [...deployed, ...canaries] : desired).map((s) => s.spec));
      // A start for the same version under way (a slow prepare) finishes first; one made with another spec goes.
      await this.#warm.idle();
      await this.#warm.evictStale(desired);
      const result = await this.#workloads.converge(desired, this.#warm.handles, deployed.map((s) => s.spec));
      for (const f of result.failed) this.#log(`${f.service} failed to start: ${f.error}`);
      this.#applyJobs(deployed);
      this.reportReplicas();
    });
    this.#converging = run.catch((err) => this.#log(`converge: ${(err as Error).message ?? err}`));
    return this.#converging;
  }

  /** Hands every deployed service's jobs to the triggers (the leader runs them), with its workload where it runs here. */
  #applyJobs(deployed: StoredService[]): void {
    const active = this.#workloads.active;
    this.#jobs?.apply(deployed.map(({ spec }) => ({ spec, handle: active.get(keyOf(spec))?.handle })));
  }

  /** Module and file bytes stay out of the log: what a deploy applied here references, a peer has. */
  #bringMissing(specs: ServiceSpec[]): Promise<void> {
    return this.#fetchMissing ? bringMissing(specs, this.#store, this.#fetchMissing, this.#log) : Promise.resolve();
  }

  /** Applies a deploy; serialized with other deploys. */
  deploy(request: DeployRequest): Promise<DeployResult> {
    return this.#serial(() => this.#deploy(request));
  }

  /** Runs `op` after every deploy, removal and replan before it, and before those after. */
  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** `orca redeploy`: `service` started anew at a new version of its spec, where it is placed; nothing else changes. */
  redeploy(service: string, by?: string): Promise<DeployResult> {
    return this.#serial(async () => {
      await this.#settled();
      const key = this.resolve(service);
      return await this.#deploy(planRedeploy(this.#store, key), `orca redeploy ${key}${by ? ` by ${by}` : ""}`, key);
    });
  }

  /**
   * Deploys `service` again at the version deploy `to` left it at (default: the version before), the way a deploy
   * does; recorded in the history as a rollback.
   */
  rollback(service: string, to?: number, by?: string): Promise<DeployResult & { from: number; to: number }> {
    return this.#serial(async () => {
      await this.#settled();
      const key = this.resolve(service);
      const { request, from, target } = planRollback(this.#store, key, to);
      const origin = `orca rollback ${key} to v${target.version} of deploy ${target.deploy}${by ? ` by ${by}` : ""}`;
      const result = await this.#deploy(request, origin);
      return { ...result, from, to: target.version };
    });
  }

  /** `again`: a service started anew at a new version though its spec is unchanged (`orca redeploy`). */
  async #deploy(request: DeployRequest, origin?: string, again?: string): Promise<DeployResult> {
    const incoming = validateRequest(request);
    const by = requester(request);
    await this.#settled();
    // Uploaded to another server (a leader since replaced)? A peer has the bytes.
    await this.#bringMissing(incoming);
    checkRunnable(incoming, this.#store, this.#containers !== undefined);
    await this.#secrets?.check?.(incoming);
    const deployed = new Map(this.#store.services().map((s) => [keyOf(s.spec), s]));
    // One that failed to start here is started again, at a new version.
    const failed = (key: string) => key === again || this.#workloads.active.get(key)?.failure !== undefined;
    const projects = Object.keys(request.projects);
    const highest = (key: string) => highestVersion((text) => this.#store.sql(text), key);
    const diff = diffDeploy(incoming, projects, deployed, failed, this.#now(), highest);
    const summary = diff.summary;
    if (diff.changed.length === 0 && summary.removed.length === 0) return { id: null, summary };
    summary.origin = origin ?? `orca deploy${by ? ` by ${by}` : ""}`;
    // New versions of `strategy = "canary"` start beside the running ones; the others replace theirs.
    const { direct, canaries } = splitCanaries(diff.changed, summary, deployed, failed, (k) => this.rollouts.active(k));
    const changed = [...direct, ...canaries];

    // Routes of the result must not conflict: check before touching anything. A canary keeps its service's.
    const gone = new Set([...summary.removed, ...direct.map((c) => keyOf(c.spec))]);
    const kept = [...deployed].filter(([key]) => !gone.has(key)).map(([, s]) => s.spec);
    const specs = [...kept, ...direct.map((c) => c.spec)];
    new RouteTable(specs.flatMap(routesOf));
    // Where every replica goes: a replica that fits nowhere fails the deploy here, before anything starts.
    const keys = new Set(direct.map((c) => keyOf(c.spec)));
    let placements = this.#placing.plan(specs, keys);

    // Compile and warm every new version, here and on every node it is placed on; on any failure, undo and leave
    // the running ones alone. A service placed only on nodes that do not answer is planned once more without them
    // (one pinned there fails: 503 naming them).
    let undo = async () => {};
    for (let avoid: Set<string> | undefined;;) {
      const merged = { ...this.#placing.applied(), ...placements };
      undo = await this.#warm.start(
        this.#placing.local([...direct, ...canaries.map((c) => ({ ...c, canary: true }))], merged),
      );
      try {
        const { absent, stranded } = await this.#placing.prepareElsewhere(changed, merged);
        if (!stranded || avoid) {
          for (const node of absent) this.#log(`deploy: node ${node} did not answer; it starts its replicas when back`);
          break;
        }
        await undo();
        avoid = new Set(absent);
        placements = { ...placements, ...this.#placing.plan(specs, keys, avoid) };
      } catch (err) {
        await undo();
        throw err;
      }
    }
    let id: number;
    try {
      const removed = summary.removed.map((k) => deployed.get(k)!.spec);
      id = await this.#commit(direct, removed, summary, placements, canaries);
    } catch (err) {
      await undo();
      throw err;
    }
    // The log applied it: the convergence it set off takes the warm versions and swaps.
    await this.#converging;
    for (const [name, data] of deployEvents(id, summary, changed)) this.emit(name, data);
    this.#log(`deploy ${id}: ${describeSummary(summary)}`);
    if (this.#keepsAll) this.#collector.soon();
    return { id, summary };
  }

  /**
   * Warms `services` ahead of a deploy the leader is about to commit (they wait, started, for the convergence after
   * it); fetches their bytes from a peer first. A failure removes what this call started.
   */
  async prepare(services: LocalService[]): Promise<void> {
    await this.#bringMissing(services.map((s) => s.spec));
    await this.#warm.start(services);
  }

  /** What deploying `request` would place where, with every node's verdict (`orca deploy --plan`); changes nothing. */
  async planDeploy(request: DeployRequest): Promise<{ text: string; plan: ExplainJson }> {
    const incoming = validateRequest(request);
    await this.#settled();
    return this.#placing.explain(incoming, Object.keys(request.projects));
  }

  /** Removes one service (by `name` or `project/name`); serialized with deploys. */
  remove(service: string): Promise<DeployResult> {
    return this.#serial(async () => {
      await this.#settled();
      const key = this.resolve(service);
      const [project, name] = splitKey(key);
      const summary: DeploySummary = { created: [], updated: [], removed: [key], unchanged: [], origin: "orca rm" };
      const id = await this.#commit([], [{ project, name }], summary);
      await this.#converging;
      this.emit("orca.service.removed", { service: key, deploy: id });
      this.#log(`deploy ${id}: removed ${key}`);
      if (this.#keepsAll) this.#collector.soon();
      return { id, summary };
    });
  }

  /** Waits until this node applied what is committed and converged to it: versions are then numbered never twice. */
  async #settled(): Promise<void> {
    await this.#commands.caughtUp();
    await this.#converging;
  }

  /** Commits a deploy (upserts and removals) to the log; resolves with its id once applied. */
  async #commit(
    upserts: StoredService[],
    removed: { project: string; name: string }[],
    summary: DeploySummary,
    placements?: Placements,
    canaries: StoredService[] = [],
  ): Promise<number> {
    const removals = removed.map(({ project, name }) => ({ project, name }));
    const command = {
      type: "deploy" as const,
      at: this.#now(),
      upserts,
      removals,
      summary,
      ...(placements && Object.keys(placements).length > 0 && { placements }),
      ...(canaries.length > 0 && { canaries }),
    };
    return await this.#commands.propose(command, { serial: true }) as number;
  }

  /**
   * Plans again with the nodes' health as it is now (the leader, every second): replicas of a silent node move,
   * missing ones are placed; commits only what changed.
   */
  replan(): Promise<void> {
    if (this.#replanning) return Promise.resolve(); // one waiting is enough: it plans from what is current then
    this.#replanning = true;
    return this.#serial(async () => {
      this.#replanning = false;
      await this.#settled();
      const replanned = this.#placing.replan(this.#store.services());
      if (!replanned) return;
      const { changed, reason, unplaced } = replanned;
      await this.#commands.propose({ type: "place", at: this.#now(), placements: changed, reason }, { serial: true });
      this.#log(`placements: ${reason}`);
      for (const line of unplaced) this.#log(line);
    });
  }

  /** Whether this server runs a workload of `service` (started or failed). */
  runsHere(service: string): boolean {
    return this.#workloads.active.has(service);
  }

  /** What the other servers that run `service` measured of its canary's versions. */
  #askNodes(service: string) {
    const cluster = this.#cluster!;
    const nodes = this.#placing.placedOn(service) ?? cluster.members().map((m) => m.id);
    const others = [...new Set(nodes)].filter((n) => n !== cluster.node);
    return Promise.all(others.map((node) => cluster.rolloutFigures!(node, service)));
  }

  /** Answers an HTTP request for `service` (a route's target): here, or through a server that has a replica. */
  serve(service: string, request: Request, ctx: HttpContext): Promise<Response> {
    return this.#serving.serve(service, request, ctx);
  }

  /** Every deployed service: its state here, or where it runs. */
  status(): Promise<ServiceStatus[]> {
    return serviceStatuses({
      services: this.#store.services(),
      placements: this.#placing.applied(),
      states: this.#placing.states(),
      ...(this.#cluster && { node: this.#cluster.node }),
      active: this.#workloads.active,
      runtime: (handle) => this.#workloads.runtime(handle),
      replicas: (handle) => this.watchdog.view(handle),
      ...(this.#jobs && { jobs: this.#jobs }),
    });
  }

  /** Resolves `name` or `project/name` to a service key, or explains why not. */
  resolve(service: string): string {
    return resolveKey(this.#store.services().map((s) => keyOf(s.spec)), service);
  }

  deploys(limit?: number): DeployRecord[] {
    return this.#store.deploys(limit);
  }

  async shutdown(): Promise<void> {
    this.watchdog.stop();
    this.#collector.stop();
    await this.#jobs?.stop();
    await this.#converging;
    await this.#workloads.shutdown();
  }
}

export { type DeployRequest, describeSummary, type ServiceStatus };
export type { CommandLog, ControlPlaneOptions, DeployResult };
