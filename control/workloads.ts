/**
 * The workloads this node runs, one per service, kept in line with the
 * desired state the log applied: `converge` starts what is new, swaps routes
 * and workloads together (synchronously, so no request sees half a change),
 * and retires what was replaced or removed after its in-flight requests end.
 * A version made ahead (a deploy warms its new versions before it commits)
 * is taken as it is, so a deploy's swap waits for nothing.
 */

import { OrcaError } from "../errors.ts";
import { routesOf, RouteTable } from "../proxy/mod.ts";
import {
  type GuestKind,
  type HttpServing,
  type JobRunning,
  type Runtime,
  WasmRuntime,
  type WasmRuntimeOptions,
  type WorkloadHandle,
} from "../runtime/mod.ts";
import { keyOf } from "./deploy_request.ts";
import { needsCommand } from "./jobs.ts";
import { serviceRefs, type ServiceSpec } from "../config/mod.ts";
import type { Store, StoredService } from "./store.ts";

export interface Active {
  stored: LocalService;
  handle?: WorkloadHandle;
  /** Why there is no workload (it failed to start here). */
  failure?: string;
}

export type WasmLike = Runtime & HttpServing & JobRunning & { guestKind(handle: WorkloadHandle): GuestKind };
export type ContainerLike = Runtime & HttpServing & {
  orphans(): Promise<{ kind: "container" | "network"; id: string; name: string; workload: string }[]>;
  removeOrphan(orphan: { kind: "container" | "network"; id: string }): Promise<void>;
  /** Tells of each container of this node that ends, as it ends; returns the function that stops it. */
  watchDeaths?(onDeath: () => void): () => void;
};

export interface WorkloadsOptions {
  wasm: WasmLike;
  containers?: ContainerLike;
  log: (line: string) => void;
  /** How long a replaced version may finish in-flight requests. */
  drainMs: number;
  /** Puts the values of the secrets a service references into its spec (absent: such a service does not start). */
  resolve?: (spec: ServiceSpec) => Promise<ServiceSpec>;
}

/** What a convergence changed: services started (new or a new version), removed, and those that failed to start. */
export interface Converged {
  started: string[];
  removed: string[];
  failed: { service: string; error: string }[];
}

/**
 * A service as this server runs it: `here` is set when the scheduler placed a number of its replicas here other than
 * its spec's (its spec then says `here`), so that a change of that number alone makes a workload of its own.
 */
export type LocalService = StoredService & { here?: number; canary?: boolean; secrets?: string };

/** The key of a service's workload here: its canary's is apart from the version it runs beside. */
export function activeKey(stored: LocalService): string {
  return stored.canary ? `${keyOf(stored.spec)}#canary` : keyOf(stored.spec);
}

/** The id of a service's workload at a version (and count here): the key warm versions are found by. */
export function workloadId(stored: LocalService): string {
  const here = stored.here === undefined ? "" : `x${stored.here}`;
  return `${keyOf(stored.spec)}@${stored.version}${here}${stored.secrets === undefined ? "" : `.s${stored.secrets}`}`;
}

export class Workloads {
  readonly #opts: WorkloadsOptions;
  readonly active = new Map<string, Active>();
  #routes = new RouteTable([]);

  constructor(opts: WorkloadsOptions) {
    this.#opts = opts;
  }

  get routes(): RouteTable {
    return this.#routes;
  }

  /** The runtime `handle` runs on. */
  runtime(handle: WorkloadHandle): Runtime & HttpServing {
    if (handle.runtime === "wasm") return this.#opts.wasm;
    if (!this.#opts.containers) throw new OrcaError("internal", `no container runtime for ${handle.id}`);
    return this.#opts.containers;
  }

  /**
   * Makes the running set match `desired`, using `warm` versions where there are; a failure to start is recorded.
   * The routes are those of `routed` (every service deployed: one placed on other servers is forwarded there).
   */
  async converge(
    desired: LocalService[],
    warm: Map<string, WorkloadHandle>,
    routed: ServiceSpec[] = desired.map((s) => s.spec),
  ): Promise<Converged> {
    const result: Converged = { started: [], removed: [], failed: [] };
    const next = new Map<string, Active>();
    for (const stored of desired) {
      const key = activeKey(stored);
      const current = this.active.get(key);
      if (current && workloadId(current.stored) === workloadId(stored)) {
        next.set(key, current);
        continue;
      }
      const id = workloadId(stored);
      // A promoted canary runs on as its service's version: the same workload, not a new one.
      const running = [...this.active.values()].find((a) => a.handle && workloadId(a.stored) === id)?.handle;
      try {
        const handle = warm.get(id) ?? running ?? await this.start(stored);
        warm.delete(id);
        next.set(key, { stored, handle });
        result.started.push(key);
      } catch (err) {
        const failure = err instanceof Error ? err.message : String(err);
        next.set(key, { stored, failure });
        result.failed.push({ service: key, error: failure });
      }
    }
    let table: RouteTable;
    try {
      table = new RouteTable(routed.flatMap(routesOf));
    } catch (err) {
      // Deploys are checked for conflicts before they commit; a conflict here keeps the routes that work.
      this.#opts.log(`routes not changed: ${(err as Error).message}`);
      table = this.#routes;
    }
    // The swap: routes and workloads move together, with no await in between.
    const retired: WorkloadHandle[] = [];
    const kept = new Set([...next.values()].map((a) => a.handle));
    for (const [key, old] of this.active) {
      const now = next.get(key);
      if (!now) result.removed.push(key);
      if (old.handle && now !== old && !kept.has(old.handle)) retired.push(old.handle);
    }
    this.active.clear();
    for (const [key, a] of next) this.active.set(key, a);
    this.#routes = table;
    for (const handle of retired) this.retire(handle);
    return result;
  }

  /**
   * Starts again a service whose workload failed to start here (the engine was down, an image missing); undefined
   * when it runs now (or no longer needs to), else why it still cannot.
   */
  async startAgain(key: string): Promise<string | undefined> {
    const a = this.active.get(key);
    if (!a || a.handle) return undefined;
    let handle: WorkloadHandle;
    try {
      handle = await this.start(a.stored);
    } catch (err) {
      a.failure = err instanceof Error ? err.message : String(err);
      return a.failure;
    }
    // A deploy replaced it meanwhile: the new one stands.
    if (this.active.get(key) !== a) this.retire(handle);
    else this.active.set(key, { stored: a.stored, handle });
    return undefined;
  }

  /** `spec` as its workload starts: with the values of the secrets it references. */
  #resolve(spec: ServiceSpec): Promise<ServiceSpec> {
    if (this.#opts.resolve) return this.#opts.resolve(spec);
    const ref = serviceRefs(spec)[0];
    if (!ref) return Promise.resolve(spec);
    throw new OrcaError(
      "unsupported",
      `service ${keyOf(spec)}: ${ref.field} uses secret ${ref.name}, and this node has no secrets`,
    );
  }

  /** Stops `handle` once its in-flight requests are done (at most the drain time), then removes it. */
  retire(handle: WorkloadHandle): void {
    const runtime = this.runtime(handle);
    runtime.stop(handle, this.#opts.drainMs).then(() => runtime.remove(handle)).catch((err) =>
      this.#opts.log(`retire ${handle.id}: ${err}`)
    );
  }

  /** Creates and starts a service's workload at its version, checking its guest suits its triggers. */
  async start(stored: StoredService): Promise<WorkloadHandle> {
    const { wasm, containers } = this.#opts;
    const runtime = stored.spec.runtime === "wasm" ? wasm : containers;
    if (!runtime) throw new OrcaError("unsupported", `service ${keyOf(stored.spec)} needs the container runtime`);
    const service = await this.#resolve(stored.spec);
    const handle = await runtime.create({ id: workloadId(stored), service });
    try {
      await runtime.start(handle);
      const kind = handle.runtime === "wasm" ? wasm.guestKind(handle) : undefined;
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

  /** Calls `onDeath` as soon as a replica here ends, where the runtime can tell (containers); stops with the result. */
  watchDeaths(onDeath: () => void): () => void {
    return this.#opts.containers?.watchDeaths?.(onDeath) ?? (() => {});
  }

  /** Containers and networks labelled as Orca's that no service owns: left by a crash or a retired version. */
  async removeOrphans(): Promise<void> {
    const containers = this.#opts.containers;
    if (!containers) return;
    try {
      for (const orphan of await containers.orphans()) {
        await containers.removeOrphan(orphan);
        const of = orphan.kind === "container" ? ` (${orphan.workload || "no workload"})` : "";
        this.#opts.log(`removed orphan ${orphan.kind} ${orphan.name}${of}`);
      }
    } catch (err) {
      this.#opts.log(`orphan check skipped: ${(err as Error).message}`);
    }
  }

  /** Ends the Wasm workloads (they end with the process anyway); containers keep running, adopted on the next start. */
  async shutdown(): Promise<void> {
    for (const a of this.active.values()) if (a.handle?.runtime === "wasm") await this.#opts.wasm.remove(a.handle);
    this.active.clear();
  }
}

/**
 * A node's Wasm runtime (a server's or a worker's): modules and mounted files come from its store, compiled output
 * goes under its home, and `opts` says the rest.
 */
export function nodeWasmRuntime(
  home: string,
  store: Store,
  opts: Omit<WasmRuntimeOptions, "cacheDir" | "loadModule" | "loadBlob">,
): WasmRuntime {
  return new WasmRuntime({
    cacheDir: `${home}/cache`,
    loadModule: (hash) => Promise.resolve(store.getModule(hash)),
    loadBlob: (hash) => Promise.resolve(store.getBlob(hash)),
    ...opts,
  });
}
