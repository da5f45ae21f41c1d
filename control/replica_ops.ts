/**
 * What the API does with the replicas this node runs: a command in one
 * (exec), their live resource use, their logs, and one job (the leader asks
 * the node that runs a job service). A service with no replica here is
 * refused, naming the nodes that run it.
 */

import { OrcaError } from "../errors.ts";
import type {
  ExecResult,
  JobInput,
  JobResult,
  JobRunning,
  LogLine,
  LogOpts,
  ResourceStats,
  WorkloadHandle,
} from "../runtime/mod.ts";
import type { Placing } from "./placing.ts";
import type { Watchdog } from "./watchdog.ts";
import type { Workloads } from "./workloads.ts";

export class ReplicaOps {
  readonly #workloads: Workloads;
  readonly #placing: Placing;
  readonly #resolve: (service: string) => string;
  readonly #watchdog?: Watchdog;

  constructor(workloads: Workloads, placing: Placing, resolve: (service: string) => string, watchdog?: Watchdog) {
    this.#workloads = workloads;
    this.#placing = placing;
    this.#resolve = resolve;
    this.#watchdog = watchdog;
  }

  /** Runs one job of `service` here. */
  runJob(service: string, input: JobInput): Promise<JobResult> {
    const handle = this.#handleOf(service);
    const runtime = this.#workloads.runtime(handle) as Partial<JobRunning>;
    if (!runtime.runJob) throw new OrcaError("unsupported", `${handle.runtime} workloads run no jobs`);
    return runtime.runJob(handle, input);
  }

  /** Runs a command in a service's workload (first replica). */
  exec(service: string, cmd: string[]): Promise<ExecResult> {
    const handle = this.#handleOf(service);
    return this.#workloads.runtime(handle).exec(handle, cmd);
  }

  /** Live resource use of a service's workload here. */
  stats(service: string): Promise<ResourceStats> {
    const handle = this.#handleOf(service);
    return this.#workloads.runtime(handle).stats(handle);
  }

  /**
   * Live resource use of every workload here (a canary's as `service#canary`); one whose runtime does not answer
   * within `timeoutMs` (a busy Docker engine) is left out rather than holding the caller.
   */
  async allStats(timeoutMs: number): Promise<{ service: string; runtime: string; stats: ResourceStats }[]> {
    const running = [...this.#workloads.active].filter(([, a]) => a.handle);
    const results = await Promise.all(running.map(async ([service, a]) => {
      const handle = a.handle!;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), timeoutMs));
      const stats = await Promise.race([this.#workloads.runtime(handle).stats(handle).catch(() => undefined), late]);
      clearTimeout(timer);
      return stats && { service, runtime: handle.runtime, stats };
    }));
    return results.filter((r) => r !== undefined);
  }

  /**
   * Logs of a service, by `name` or `project/name`: what its replicas wrote, with what the watchdog did to them
   * (restarts, routes) in time order among the lines already written.
   */
  logs(service: string, opts: LogOpts): AsyncIterable<LogLine> {
    const handle = this.#handleOf(service);
    const key = this.#resolve(service);
    const actions = (this.#watchdog?.history(key) ?? []).map((h) => ({ ...h, stream: "system" as const }));
    const lines = this.#workloads.runtime(handle).logs(handle, opts);
    return actions.length === 0 ? lines : withActions(lines, actions, opts);
  }

  #handleOf(service: string): WorkloadHandle {
    const key = this.#resolve(service);
    const a = this.#workloads.active.get(key);
    if (!a) {
      const { ready, others } = this.#placing.elsewhere(key);
      const nodes = [...ready, ...others].join(", ");
      throw new OrcaError("unavailable", `service ${key} has no replica on this server (it runs on ${nodes})`, {
        hint: "ask the server it runs on: orca --server <its address>",
      });
    }
    if (!a.handle) {
      throw new OrcaError("unavailable", `service ${key} is not running`, { hint: "orca status shows why" });
    }
    return a.handle;
  }
}

/**
 * A service's lines with the watchdog's actions among them, in time order; following, the actions come first and
 * the lines then as they are written.
 */
async function* withActions(lines: AsyncIterable<LogLine>, actions: LogLine[], opts: LogOpts): AsyncGenerator<LogLine> {
  if (opts.follow) {
    yield* opts.tail === undefined ? actions : actions.slice(-opts.tail);
    return yield* lines;
  }
  const all = [...actions];
  for await (const line of lines) all.push(line);
  all.sort((x, y) => x.at - y.at);
  yield* opts.tail === undefined ? all : all.slice(-opts.tail);
}
