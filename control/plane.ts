/**
 * The control plane: holds the desired state (from the store), keeps one
 * running workload per service on the runtime, and swaps versions on deploy
 * without dropping a request: the new version is compiled and warm before
 * routes move to it, and the old one finishes its in-flight requests.
 */

import { OrcaError } from "../errors.ts";
import { type Route, routesOf, RouteTable } from "../proxy/mod.ts";
import type {
  ExecResult,
  GuestKind,
  HttpContext,
  HttpServing,
  JobRunning,
  LogLine,
  LogOpts,
  ResourceStats,
  Runtime,
  WorkloadHandle,
} from "../runtime/mod.ts";
import {
  checkRunnable,
  type DeployRequest,
  describeSummary,
  keyOf,
  sameSpec,
  validateRequest,
} from "./deploy_request.ts";
import { type JobTriggers, needsCommand } from "./jobs.ts";
import type { ControlCommand } from "./machine.ts";
import type { DeployRecord, DeploySummary, Store, StoredService } from "./store.ts";

/** Where changes of desired state are committed (the Raft log) before they take effect. */
export interface CommandLog {
  propose(command: ControlCommand): Promise<unknown>;
}

export interface DeployResult {
  /** The deploy's id, or null when nothing changed. */
  id: number | null;
  summary: DeploySummary;
}

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
  /** Next firing of each cron trigger. */
  nextRuns?: { trigger: string; at?: number }[];
  /** The latest cron run. */
  lastRun?: { scheduledAt: number; status: string; exitCode?: number; durationMs: number };
}

interface Active {
  stored: StoredService;
  handle?: WorkloadHandle;
  /** Why there is no workload (failed to start on restore). */
  failure?: string;
}

type WasmLike = Runtime & HttpServing & JobRunning & { guestKind(handle: WorkloadHandle): GuestKind };
type ContainerLike = Runtime & HttpServing & {
  orphans(): Promise<{ id: string; name: string; workload: string }[]>;
  removeContainer(id: string): Promise<void>;
};

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
  /** Cron, queue and event triggers; without it only http triggers run. */
  jobs?: JobTriggers;
}

export class ControlPlane {
  readonly #store: Store;
  readonly #commands: CommandLog;
  readonly #wasm: WasmLike;
  readonly #containers?: ContainerLike;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #drainMs: number;
  readonly #jobs?: JobTriggers;
  readonly #active = new Map<string, Active>();
  #routes = new RouteTable([]);
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: ControlPlaneOptions) {
    this.#store = opts.store;
    this.#commands = opts.commands;
    this.#wasm = opts.wasm;
    this.#containers = opts.containers;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? (() => {});
    this.#drainMs = opts.drainMs ?? 10_000;
    this.#jobs = opts.jobs;
  }

  /** Publishes an Orca event (`orca.service.deployed`, ...); never fails the caller. */
  emit(name: string, data: Record<string, unknown>): void {
    try {
      this.#jobs?.emit(name, data);
    } catch (err) {
      this.#log(`event ${name} not published: ${err}`);
    }
  }

  get routes(): RouteTable {
    return this.#routes;
  }

  /** Brings every stored service back; one that fails does not stop the others. */
  async restore(): Promise<void> {
    for (const stored of this.#store.services()) {
      const key = keyOf(stored.spec);
      try {
        this.#active.set(key, { stored, handle: await this.#startWorkload(stored) });
      } catch (err) {
        const failure = err instanceof Error ? err.message : String(err);
        this.#active.set(key, { stored, failure });
        this.#log(`restore: ${key} failed to start: ${failure}`);
        this.emit("orca.service.failed", { service: key, error: failure });
      }
    }
    this.#routes = new RouteTable([...this.#active.values()].flatMap((a) => routesOf(a.stored.spec)));
    this.#applyJobs([]);
    await this.#removeOrphans();
    this.#log(`restored ${this.#active.size} service(s)`);
  }

  /** Applies a deploy; serialized with other deploys. */
  deploy(request: DeployRequest): Promise<DeployResult> {
    const run = this.#queue.then(() => this.#deploy(request));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #deploy(request: DeployRequest): Promise<DeployResult> {
    const incoming = validateRequest(request);
    checkRunnable(incoming, this.#store, this.#containers !== undefined);
    const summary: DeploySummary = { created: [], updated: [], removed: [], unchanged: [] };
    const changed: StoredService[] = [];
    const incomingKeys = new Set(incoming.map(keyOf));
    for (const spec of incoming) {
      const key = keyOf(spec);
      const current = this.#active.get(key);
      if (current && current.handle && sameSpec(current.stored.spec, spec)) {
        summary.unchanged.push(key);
        continue;
      }
      (current ? summary.updated : summary.created).push(key);
      changed.push({ spec, version: (current?.stored.version ?? 0) + 1, updatedAt: this.#now() });
    }
    const projects = new Set(Object.keys(request.projects));
    for (const [key, a] of this.#active) {
      if (projects.has(a.stored.spec.project) && !incomingKeys.has(key)) summary.removed.push(key);
    }
    if (changed.length === 0 && summary.removed.length === 0) return { id: null, summary };

    // Routes of the result must not conflict: check before touching anything.
    const gone = new Set([...summary.removed, ...changed.map((c) => keyOf(c.spec))]);
    const nextRoutes: Route[] = [
      ...[...this.#active].filter(([key]) => !gone.has(key)).flatMap(([, a]) => routesOf(a.stored.spec)),
      ...changed.flatMap((c) => routesOf(c.spec)),
    ];
    const table = new RouteTable(nextRoutes);

    // Compile and warm every new version; on any failure, undo and leave the running ones alone.
    const started = new Map<string, WorkloadHandle>();
    try {
      for (const c of changed) started.set(keyOf(c.spec), await this.#startWorkload(c));
    } catch (err) {
      for (const h of started.values()) await this.#runtime(h).remove(h);
      throw err;
    }

    let id: number;
    try {
      id = await this.#commit(changed, summary.removed.map((k) => this.#active.get(k)!.stored.spec), summary);
    } catch (err) {
      for (const h of started.values()) await this.#runtime(h).remove(h);
      throw err;
    }

    // Swap: routes and workloads move together, synchronously.
    const retired: WorkloadHandle[] = [];
    for (const key of summary.removed) {
      const old = this.#active.get(key)!;
      if (old.handle) retired.push(old.handle);
      this.#active.delete(key);
    }
    for (const c of changed) {
      const key = keyOf(c.spec);
      const old = this.#active.get(key);
      if (old?.handle) retired.push(old.handle);
      this.#active.set(key, { stored: c, handle: started.get(key)! });
    }
    this.#routes = table;
    this.#applyJobs(summary.removed);
    for (const key of summary.created) this.emit("orca.service.deployed", { service: key, deploy: id, version: 1 });
    for (const key of summary.updated) {
      this.emit("orca.service.updated", { service: key, deploy: id, version: this.#active.get(key)!.stored.version });
    }
    for (const key of summary.removed) this.emit("orca.service.removed", { service: key, deploy: id });
    for (const h of retired) {
      this.#runtime(h).stop(h, this.#drainMs).then(() => this.#runtime(h).remove(h)).catch((err) =>
        this.#log(`retire ${h.id}: ${err}`)
      );
    }
    this.#log(`deploy ${id}: ${describeSummary(summary)}`);
    return { id, summary };
  }

  /** Removes one service (by `name` or `project/name`); serialized with deploys. */
  remove(service: string): Promise<DeployResult> {
    const run = this.#queue.then(async () => {
      const key = this.resolve(service);
      const a = this.#active.get(key)!;
      const summary: DeploySummary = { created: [], updated: [], removed: [key], unchanged: [] };
      const id = await this.#commit([], [a.stored.spec], summary);
      this.#active.delete(key);
      this.#routes = new RouteTable([...this.#active.values()].flatMap((x) => routesOf(x.stored.spec)));
      this.#applyJobs([key]);
      this.emit("orca.service.removed", { service: key, deploy: id });
      if (a.handle) {
        const h = a.handle;
        this.#runtime(h).stop(h, this.#drainMs).then(() => this.#runtime(h).remove(h)).catch((err) =>
          this.#log(`retire ${h.id}: ${err}`)
        );
      }
      this.#log(`deploy ${id}: removed ${key}`);
      return { id, summary };
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Commits a deploy (upserts and removals) to the log; resolves with its id once applied. */
  async #commit(
    upserts: StoredService[],
    removed: { project: string; name: string }[],
    summary: DeploySummary,
  ): Promise<number> {
    const removals = removed.map(({ project, name }) => ({ project, name }));
    return await this.#commands.propose({ type: "deploy", at: this.#now(), upserts, removals, summary }) as number;
  }

  /** Runs a command in a service's workload (first replica). */
  exec(service: string, cmd: string[]): Promise<ExecResult> {
    const handle = this.#handleOf(service);
    return this.#runtime(handle).exec(handle, cmd);
  }

  /** Live resource use of a service's workload. */
  stats(service: string): Promise<ResourceStats> {
    const handle = this.#handleOf(service);
    return this.#runtime(handle).stats(handle);
  }

  #handleOf(service: string): WorkloadHandle {
    const key = this.resolve(service);
    const handle = this.#active.get(key)!.handle;
    if (!handle) throw new OrcaError("unavailable", `service ${key} is not running`, { hint: "orca status shows why" });
    return handle;
  }

  /** Answers an HTTP request for `service` (a route's target). */
  serve(service: string, request: Request, ctx: HttpContext): Promise<Response> {
    const a = this.#active.get(service);
    if (!a?.handle) {
      return Promise.resolve(
        Response.json({ error: "service unavailable", service, detail: a?.failure }, { status: 503 }),
      );
    }
    return this.#runtime(a.handle).serveHttp(a.handle, request, ctx);
  }

  async status(): Promise<ServiceStatus[]> {
    const out: ServiceStatus[] = [];
    for (const [, a] of [...this.#active].sort(([x], [y]) => x.localeCompare(y))) {
      const { spec, version, updatedAt } = a.stored;
      const routes = routesOf(spec).map((r) => r.host ? `${r.host}${r.pattern}` : r.pattern);
      const base = {
        project: spec.project,
        name: spec.name,
        runtime: spec.runtime,
        routes,
        version,
        updatedAt,
        ...(spec.module_hash && { module: spec.module_hash }),
      };
      if (!a.handle) {
        out.push({ ...base, state: "failed", instances: 0, requests: 0, errors: 0, message: a.failure });
        continue;
      }
      const runtime = this.#runtime(a.handle);
      // Container stats take the engine a second or two: status shows Wasm counters only.
      const [st, stats] = await Promise.all([
        runtime.status(a.handle).catch((err) => ({ state: "failed", instances: 0, message: (err as Error).message })),
        a.handle.runtime === "wasm" ? runtime.stats(a.handle) : Promise.resolve({ requests: 0, errors: 0 }),
      ]);
      const key = keyOf(spec);
      const nextRuns = this.#jobs?.nextRuns(key) ?? [];
      const last = this.#jobs?.runs.runs(key, 1)[0];
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
        state: st.state,
        instances: st.instances,
        requests: stats.requests,
        errors: stats.errors,
        ...(st.message && { message: st.message }),
      });
    }
    return out;
  }

  /** Logs of a service, by `name` or `project/name`. */
  logs(service: string, opts: LogOpts): AsyncIterable<LogLine> {
    const handle = this.#handleOf(service);
    return this.#runtime(handle).logs(handle, opts);
  }

  /** Resolves `name` or `project/name` to a service key, or explains why not. */
  resolve(service: string): string {
    if (this.#active.has(service)) return service;
    const matches = [...this.#active.keys()].filter((k) => k.endsWith(`/${service}`));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      throw new OrcaError("invalid", `service name "${service}" is ambiguous`, {
        hint: `use one of: ${matches.join(", ")}`,
      });
    }
    throw new OrcaError("not_found", `no service "${service}"`, { hint: "orca status lists the deployed services" });
  }

  #runtime(handle: WorkloadHandle): Runtime & HttpServing {
    if (handle.runtime === "wasm") return this.#wasm;
    if (!this.#containers) throw new OrcaError("internal", `no container runtime for ${handle.id}`);
    return this.#containers;
  }

  /** Containers labelled as Orca's that no service owns: left by a crash or a retired version. */
  async #removeOrphans(): Promise<void> {
    if (!this.#containers) return;
    try {
      for (const orphan of await this.#containers.orphans()) {
        await this.#containers.removeContainer(orphan.id);
        this.#log(`removed orphan container ${orphan.name} (${orphan.workload || "no workload"})`);
      }
    } catch (err) {
      this.#log(`orphan check skipped: ${(err as Error).message}`);
    }
  }

  #applyJobs(removed: string[]): void {
    const running = [...this.#active.values()].filter((a) => a.handle).map((a) => ({
      spec: a.stored.spec,
      handle: a.handle!,
    }));
    this.#jobs?.apply(running, removed);
  }

  deploys(limit?: number): DeployRecord[] {
    return this.#store.deploys(limit);
  }

  async shutdown(): Promise<void> {
    await this.#jobs?.stop();
    // Wasm workloads end with the process; containers keep running, and are adopted on the next start.
    for (const a of this.#active.values()) if (a.handle?.runtime === "wasm") await this.#wasm.remove(a.handle);
    this.#active.clear();
  }

  async #startWorkload(stored: StoredService): Promise<WorkloadHandle> {
    const runtime = stored.spec.runtime === "wasm" ? this.#wasm : this.#containers;
    if (!runtime) throw new OrcaError("unsupported", `service ${keyOf(stored.spec)} needs the container runtime`);
    const handle = await runtime.create({ id: `${keyOf(stored.spec)}@${stored.version}`, service: stored.spec });
    try {
      await runtime.start(handle);
      const kind = handle.runtime === "wasm" ? this.#wasm.guestKind(handle) : undefined;
      if (kind === "handler" && routesOf(stored.spec).length > 0) {
        throw new OrcaError(
          "config",
          `service ${keyOf(stored.spec)} is an orca:jobs/handler, which cannot answer HTTP`,
          {
            hint: "remove its http triggers and domain, or build it as a wasi:http component or a WASI command",
          },
        );
      }
      if (kind === "http" && needsCommand(stored.spec)) {
        throw new OrcaError(
          "config",
          `service ${keyOf(stored.spec)} has cron/queue/event triggers but is a wasi:http handler`,
          {
            hint:
              "jobs run a WASI command (wasi:cli/run, e.g. a C or Rust program with main); move them to a separate service",
          },
        );
      }
    } catch (err) {
      await runtime.remove(handle);
      throw err;
    }
    return handle;
  }
}

export { type DeployRequest, describeSummary };
