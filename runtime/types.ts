/**
 * The `Runtime` interface every workload implements (seed 001), Wasm and
 * containers alike, plus the optional ability to answer HTTP in-process.
 */

import type { RuntimeKind, ServiceSpec } from "../config/mod.ts";

/** What a runtime needs to create a workload. */
export interface WorkloadSpec {
  /** Unique per deployed version, e.g. `edge/hello@3`. */
  id: string;
  service: ServiceSpec;
}

/** A created workload, as the runtime knows it. */
export interface WorkloadHandle {
  id: string;
  runtime: RuntimeKind;
}

export type WorkloadState = "created" | "running" | "stopped" | "failed";

export interface WorkloadStatus {
  state: WorkloadState;
  /** Live (ready or busy) instances. */
  instances: number;
  /** When the state last changed (ms since epoch). */
  since: number;
  message?: string;
}

export interface LogLine {
  /** ms since epoch */
  at: number;
  stream: "stdout" | "stderr" | "system";
  text: string;
}

export interface LogOpts {
  /** Keep the stream open and yield new lines as they come. */
  follow?: boolean;
  /** Only the last N lines already recorded. */
  tail?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export interface ResourceStats {
  /** Memory in use now (Wasm: linear memory of live instances). */
  memoryBytes: number;
  memoryLimitBytes?: number;
  cpuPercent?: number;
  requests: number;
  errors: number;
  instances: number;
  /** Wasm: instances made since it started (isolated requests on reset instances make none). */
  instancesMade?: number;
  /** Wasm: guest hosts killed or lost while serving this workload (a guest that did not stop at its deadline). */
  incidents?: number;
}

/** Seed 001's Runtime trait. */
export interface Runtime {
  readonly kind: RuntimeKind;
  create(spec: WorkloadSpec): Promise<WorkloadHandle>;
  start(handle: WorkloadHandle): Promise<void>;
  /** Stops taking work; in-flight work gets up to `timeoutMs` to finish. */
  stop(handle: WorkloadHandle, timeoutMs: number): Promise<void>;
  remove(handle: WorkloadHandle): Promise<void>;
  status(handle: WorkloadHandle): Promise<WorkloadStatus>;
  logs(handle: WorkloadHandle, opts?: LogOpts): AsyncIterable<LogLine>;
  exec(handle: WorkloadHandle, cmd: string[]): Promise<ExecResult>;
  stats(handle: WorkloadHandle): Promise<ResourceStats>;
}

/** Per-request facts the proxy passes to an in-process HTTP handler. */
export interface HttpContext {
  /** `:param` values of the matched route. */
  params: Record<string, string>;
  /** The part of the path matched by a trailing `*`. */
  rest?: string;
  /** The route pattern that matched, e.g. `/api/:id`. */
  route: string;
  /**
   * The client as the proxy that took the request saw it: its address, the scheme and the Host it asked for. What a
   * client says of itself in `X-Forwarded-*` or `Forwarded` is never taken for it.
   */
  client?: { address: string; proto: "http" | "https"; host: string };
  /**
   * The headers as the service is to see them, where they differ from the request's: a WebSocket upgrade another
   * server forwarded keeps its own request object (only that one can be upgraded), its forwarding headers go here.
   */
  headers?: Headers;
}

/** Runtimes whose workloads answer HTTP inside the Orca process (Wasm). */
export interface HttpServing {
  serveHttp(handle: WorkloadHandle, request: Request, ctx: HttpContext): Promise<Response>;
}

/** One run of a job (cron firing, queue message, event). */
export interface JobInput {
  /** Added to the service's own env (ORCA_TRIGGER, ORCA_TOPIC, ...). */
  env: Record<string, string>;
  stdin: Uint8Array;
  /** The queue topic or event name (`cron` for cron firings): the first argument of `orca:jobs/handler`. */
  topic?: string;
}

export interface JobResult {
  /** 0 is success; -1 when the guest trapped or could not start. */
  exitCode: number;
  /** The last bytes of stdout and stderr, interleaved as written. */
  outputTail: string;
  durationMs: number;
  error?: string;
}

/** Runtimes that can run a workload as a one-off job. */
export interface JobRunning {
  runJob(handle: WorkloadHandle, input: JobInput): Promise<JobResult>;
}

/** One replica of a workload as the watchdog sees it. */
export interface ReplicaHealth {
  /** From 1. */
  replica: number;
  alive: boolean;
  /** Why it is not alive: "exited with code 1", "the container is gone". */
  detail?: string;
  exitCode?: number;
  /** The engine killed it for using more memory than its limit. */
  oomKilled?: boolean;
}

/** What a probe found: `undefined` when the replica answered 2xx or 3xx, else why not. */
export type ProbeFailure = string | undefined;

/** Runtimes whose replicas the watchdog checks, probes and restarts (both: containers per replica, Wasm as one). */
export interface Healing {
  /** Each replica's state now; a workload being stopped has none to heal. */
  replicas(handle: WorkloadHandle): Promise<ReplicaHealth[]>;
  /**
   * Starts replica `replica` again from the spec it was created with (a container that is gone is created anew; a
   * Wasm service drops its instances and loads again); resolves once it is ready for traffic.
   */
  restart(handle: WorkloadHandle, replica: number): Promise<void>;
  /**
   * Whether `replica` gets requests (a replica found dead or failing readiness does not). Runtimes of one replica
   * (Wasm) have none: the plane stops routing to the whole workload.
   */
  route?(handle: WorkloadHandle, replica: number, routed: boolean): void;
  /** An HTTP GET of `path` on `replica`, given `timeoutMs` to answer. */
  probe(handle: WorkloadHandle, replica: number, path: string, timeoutMs: number): Promise<ProbeFailure>;
  /** The last `lines` lines `replica` wrote (what a crash loop shows). */
  tail(handle: WorkloadHandle, replica: number, lines: number): Promise<string[]>;
}
