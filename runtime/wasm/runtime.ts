/**
 * The Wasm implementation of `Runtime`. This process keeps each workload's
 * state, logs and counters; guests run in guest host processes (hosts.ts, one
 * per core by default) or, with `workers: 0`, in this process (executor.ts).
 */

import { OrcaError } from "../../errors.ts";
import { LogBuffer } from "../logs.ts";
import type {
  ExecResult,
  Healing,
  HttpContext,
  HttpServing,
  JobInput,
  JobResult,
  JobRunning,
  LogLine,
  LogOpts,
  ProbeFailure,
  ReplicaHealth,
  ResourceStats,
  Runtime,
  WorkloadHandle,
  WorkloadSpec,
  WorkloadState,
  WorkloadStatus,
} from "../types.ts";
import { DEFAULT_MEMORY_LIMIT, type GuestKind, prepareComponent, type PreparedComponent } from "./compile.ts";
import { Admission, enterBoth, overloaded, type Refusal } from "./admission.ts";
import { describeGuest, type GuestBackend, HTTP_TIMEOUT_MS, mountsOf, type WorkloadDesc } from "./backend.ts";
import { Executor } from "./executor.ts";
import { errorResponse, errorText } from "./guest.ts";
import { HostPool } from "./hosts.ts";
import { STREAM_AFTER_BYTES } from "./body.ts";
import { probeThrough } from "../probe.ts";
import { headerPairs, withForwarding, withLength } from "../upstream.ts";

export interface WasmRuntimeOptions {
  /** Where jco's transpiled output is cached. */
  cacheDir: string;
  /** Reads module bytes by content hash (from the node's store). */
  loadModule(hash: string): Promise<Uint8Array>;
  /** Reads a mounted file's bytes by content hash (`[service.wasm] files`). */
  loadBlob?(hash: string): Promise<Uint8Array>;
  /** Pre-made instances per workload (per guest host). */
  poolSize?: number;
  /**
   * HTTP calls of one service running at once, over all its guest hosts (default: 4 per guest host, 4 in this
   * process). Each holds an instance, so this bounds a service's memory in every host.
   */
  concurrency?: number;
  /** HTTP calls of one service waiting for a turn (default 128); more are answered 503 with Retry-After at once. */
  queue?: number;
  /**
   * HTTP calls running at once in each guest host, of all services together (default 16); more wait for a turn
   * (within their service's queue). With the pools, this bounds the instances, so the memory, of a host.
   */
  hostConcurrency?: number;
  /** Guest host processes (default: one per core); 0 runs guests in this process. */
  workers?: number;
  /** A service with no call for this long drops its instances (scale to zero; default 60 s). */
  idleMs?: number;
  /** A reused instance (`instance = "reuse"`) is replaced after this many requests (default 1,000). */
  maxReuses?: number;
  /** How long past a call's deadline before its guest host is killed (default 2 s). */
  graceMs?: number;
  /** Where guest hosts' socket folders are made (default: the system's temporary folder). */
  socketParent?: string;
  /**
   * Whether guests get interrupt checks (default true). Without them only the
   * guest host backstop stops a spinning guest: for benchmarks and its tests.
   */
  instrument?: boolean;
  now?: () => number;
  /** Told when a guest traps or fails outside its own control (for `orca.instance.crashed`). */
  onIncident?: (service: string, error: string) => void;
  /** Node-level messages (a guest host killed and replaced). */
  log?: (line: string) => void;
}

interface Workload {
  handle: WorkloadHandle;
  spec: WorkloadSpec;
  desc: WorkloadDesc;
  kind: GuestKind;
  logs: LogBuffer;
  state: WorkloadState;
  since: number;
  message?: string;
  busy: number;
  requests: number;
  errors: number;
  /** Guest hosts lost while serving this workload. */
  incidents: number;
  /** Who of its HTTP calls run, who wait, who are turned away. */
  admission: Admission;
  /** When calls were last turned away and logged (at most every OVERLOAD_LOG_MS). */
  refusedLoggedAt?: number;
  refusedSince: number;
  idle?: () => void;
}

/** Buffered request bodies larger than this are refused with 413 (a streamed one has no limit but its deadline). */
const MAX_REQUEST_BODY = 32 * 1024 * 1024;
/** Calls of a service waiting for a turn, by default. */
const DEFAULT_QUEUE = 128;
/** Calls of a service running at once per guest host, by default. */
const CONCURRENCY_PER_HOST = 4;
/** Calls running at once in one guest host (all services together), by default. */
const HOST_CONCURRENCY = 16;
/** What an overloaded service's clients are told to wait before trying again, in seconds. */
const RETRY_AFTER_S = 1;
const OVERLOAD_LOG_MS = 10_000;

export class WasmRuntime implements Runtime, HttpServing, JobRunning, Healing {
  readonly kind = "wasm" as const;
  readonly #opts: WasmRuntimeOptions;
  readonly #now: () => number;
  readonly #prepared = new Map<string, Promise<PreparedComponent>>();
  readonly #workloads = new Map<string, Workload>();
  readonly #backend: GuestBackend;
  readonly #concurrency: number;
  /** Turns for calls in the guest hosts, every service's together. */
  readonly #node: Admission;

  constructor(opts: WasmRuntimeOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const idleMs = opts.idleMs ?? 60_000;
    const log = (id: string, stream: LogLine["stream"], text: string) =>
      this.#workloads.get(id)?.logs.append(stream, text);
    const workers = opts.workers ?? navigator.hardwareConcurrency;
    this.#concurrency = opts.concurrency ?? CONCURRENCY_PER_HOST * Math.max(1, workers);
    // Calls waiting here are already bounded by every service's own queue.
    this.#node = new Admission((opts.hostConcurrency ?? HOST_CONCURRENCY) * Math.max(1, workers), Infinity);
    this.#backend = workers > 0
      ? new HostPool({
        size: workers,
        cacheDir: opts.cacheDir,
        idleMs,
        log,
        graceMs: opts.graceMs,
        ...(opts.socketParent && { socketParent: opts.socketParent }),
        onIncident: (ids, why) => this.#hostLost(ids, why),
      })
      : new Executor({ idleMs, log, ...(opts.now && { now: opts.now }) });
  }

  /** Guest host processes (0: guests run in this process) and how many were killed or died. */
  hosts(): { workers: number; restarts: number } {
    return this.#backend instanceof HostPool
      ? { workers: this.#backend.size, restarts: this.#backend.restarts }
      : { workers: 0, restarts: 0 };
  }

  /** Transpiles and processes the module of `hash` once per memory cap; bad bytes reject with an OrcaError. */
  prepare(hash: string, memoryLimitBytes = DEFAULT_MEMORY_LIMIT): Promise<PreparedComponent> {
    const key = `${hash}@${memoryLimitBytes}`;
    let prepared = this.#prepared.get(key);
    if (!prepared) {
      prepared = this.#opts.loadModule(hash).then((bytes) =>
        prepareComponent(bytes, hash, this.#opts.cacheDir, memoryLimitBytes, { instrument: this.#opts.instrument })
      );
      prepared.catch(() => this.#prepared.delete(key));
      this.#prepared.set(key, prepared);
    }
    return prepared;
  }

  async create(spec: WorkloadSpec): Promise<WorkloadHandle> {
    const { service } = spec;
    if (!service.module_hash) {
      throw new OrcaError("invalid", `service ${service.name} has no module`, { where: spec.id });
    }
    if (this.#workloads.has(spec.id)) throw new OrcaError("conflict", `workload ${spec.id} already exists`);
    const prepared = await this.prepare(service.module_hash, service.resources.memory ?? DEFAULT_MEMORY_LIMIT);
    if (service.wasm.instance === "reuse" && prepared.kind !== "http") {
      throw new OrcaError("config", `service ${service.name}: instance = "reuse" applies to wasi:http handlers`, {
        where: spec.id,
        hint: prepared.kind === "command"
          ? "a WASI command runs its main once per request; remove instance, or build a wasi:http component"
          : "message handlers keep their instance already; remove instance",
      });
    }
    const desc: WorkloadDesc = {
      id: spec.id,
      name: service.name,
      project: service.project,
      prepared,
      env: { ...service.env },
      allowedHosts: [...service.wasm.allowed_hosts],
      mounts: await mountsOf(spec, this.#opts.loadBlob),
      ...(service.limits.timeout_ms !== undefined && { timeoutMs: service.limits.timeout_ms }),
      poolSize: this.#opts.poolSize ?? 4,
      ...(service.wasm.instance && { instance: service.wasm.instance }),
      ...(this.#opts.maxReuses !== undefined && { maxReuses: this.#opts.maxReuses }),
    };
    const handle: WorkloadHandle = { id: spec.id, runtime: "wasm" };
    this.#workloads.set(spec.id, {
      handle,
      spec,
      desc,
      kind: prepared.kind,
      logs: new LogBuffer(2000, this.#now),
      state: "created",
      since: this.#now(),
      busy: 0,
      requests: 0,
      errors: 0,
      incidents: 0,
      admission: new Admission(this.#concurrency, this.#opts.queue ?? DEFAULT_QUEUE),
      refusedSince: 0,
    });
    return handle;
  }

  async start(handle: WorkloadHandle): Promise<void> {
    const w = this.#get(handle);
    try {
      await this.#backend.load(w.desc);
    } catch (err) {
      this.#setState(w, "failed", `cannot instantiate: ${errorText(err)}`);
      throw new OrcaError("wasm", `service ${w.spec.service.name} cannot start: ${errorText(err)}`, {
        where: w.spec.id,
      });
    }
    this.#setState(w, "running");
    w.logs.append("system", `started (${describeGuest(w.kind, w.desc)})`);
  }

  async stop(handle: WorkloadHandle, timeoutMs: number): Promise<void> {
    const w = this.#get(handle);
    if (w.state === "stopped") return;
    this.#setState(w, "stopped");
    if (w.busy > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        w.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#backend.unload(w.handle.id);
    w.logs.append("system", "stopped");
  }

  async remove(handle: WorkloadHandle): Promise<void> {
    const w = this.#workloads.get(handle.id);
    if (!w) return;
    await this.stop(handle, 0);
    w.logs.close();
    this.#workloads.delete(handle.id);
  }

  async status(handle: WorkloadHandle): Promise<WorkloadStatus> {
    const w = this.#get(handle);
    const live = w.state === "running" ? await this.#backend.stats(w.handle.id) : undefined;
    const instances = live?.instances ?? 0;
    const message = w.message ??
      (live?.notReused ? `not reused (instance = "reuse"): ${live.notReused}` : undefined) ??
      (live?.notReset ? `a fresh instance per request (not reset): ${live.notReset}` : undefined) ??
      (w.state === "running" && instances === 0 ? "idle: scaled to zero" : undefined);
    return { state: w.state, instances, since: w.since, ...(message && { message }) };
  }

  logs(handle: WorkloadHandle, opts?: LogOpts): AsyncIterable<LogLine> {
    return this.#get(handle).logs.read(opts);
  }

  exec(handle: WorkloadHandle, cmd: string[]): Promise<ExecResult> {
    const w = this.#get(handle);
    if (w.kind !== "command") {
      throw new OrcaError(
        "unsupported",
        `service ${w.spec.service.name} is a wasi:http handler; exec needs a WASI command`,
      );
    }
    if (w.state !== "running") throw new OrcaError("unavailable", `service ${w.spec.service.name} is ${w.state}`);
    return this.#backend.exec(w.handle.id, cmd);
  }

  async stats(handle: WorkloadHandle): Promise<ResourceStats> {
    const w = this.#get(handle);
    const live = w.state === "running" ? await this.#backend.stats(w.handle.id) : { instances: 0, memoryBytes: 0 };
    return {
      memoryBytes: live.memoryBytes,
      ...(w.spec.service.resources.memory && { memoryLimitBytes: w.spec.service.resources.memory }),
      requests: w.requests,
      errors: w.errors,
      instances: live.instances,
      ...(live.made !== undefined && { instancesMade: live.made }),
      incidents: w.incidents,
    };
  }

  /** A Wasm service is one replica here: alive while it is loaded (its guest hosts are replaced when lost). */
  replicas(handle: WorkloadHandle): Promise<ReplicaHealth[]> {
    const w = this.#get(handle);
    if (w.state === "running") return Promise.resolve([{ replica: 1, alive: true }]);
    if (w.state === "failed") return Promise.resolve([{ replica: 1, alive: false, detail: w.message ?? "failed" }]);
    return Promise.resolve([]);
  }

  /** Drops every instance and loads the service again (calls in flight finish on the instances they have). */
  async restart(handle: WorkloadHandle): Promise<void> {
    const w = this.#get(handle);
    if (w.state === "stopped") return;
    this.#backend.unload(w.handle.id);
    await this.start(handle);
    w.logs.append("system", "restarted by the watchdog");
  }

  /** A GET of `path` through the guest, as a request from outside would run, given `timeoutMs` to answer. */
  probe(handle: WorkloadHandle, _replica: number, path: string, timeoutMs: number): Promise<ProbeFailure> {
    return probeThrough((request, ctx) => this.serveHttp(handle, request, ctx), path, timeoutMs);
  }

  async tail(handle: WorkloadHandle, _replica: number, lines: number): Promise<string[]> {
    const out: string[] = [];
    for await (const line of this.#get(handle).logs.read({ tail: lines })) out.push(line.text);
    return out;
  }

  /** How the workload's guest is driven: `http` handler, `command` or message `handler`. */
  guestKind(handle: WorkloadHandle): GuestKind {
    return this.#get(handle).kind;
  }

  async runJob(handle: WorkloadHandle, input: JobInput): Promise<JobResult> {
    const w = this.#get(handle);
    if (w.kind === "http") {
      throw new OrcaError(
        "unsupported",
        `service ${w.spec.service.name} is a wasi:http handler; jobs need a WASI command or an orca:jobs/handler`,
      );
    }
    if (w.state !== "running") throw new OrcaError("unavailable", `service ${w.spec.service.name} is ${w.state}`);
    w.requests++;
    w.busy++;
    try {
      const { incident, ...result } = await this.#backend.job(w.handle.id, input);
      if (result.exitCode !== 0) w.errors++;
      if (incident) this.#opts.onIncident?.(serviceName(w), result.error ?? "failed");
      return result;
    } finally {
      this.#done(w);
    }
  }

  async serveHttp(handle: WorkloadHandle, request: Request, ctx: HttpContext): Promise<Response> {
    const w = this.#get(handle);
    if (w.state !== "running") return errorResponse(503, `service ${w.spec.service.name} is ${w.state}`);
    if (w.kind === "handler") {
      return errorResponse(500, `service ${w.spec.service.name} is a message handler, not an HTTP one`);
    }
    const length = request.headers.get("content-length");
    const declared = Number(length ?? 0);
    const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
    // A large body streams in as the guest reads it; so does one of unknown length to a wasi:http guest (a WAGI
    // guest needs the length up front: CGI's CONTENT_LENGTH). Small bodies are read whole first.
    const streamBody = hasBody &&
      (declared > STREAM_AFTER_BYTES || (w.kind === "http" && length === null));
    if (!streamBody && declared > MAX_REQUEST_BODY) return errorResponse(413, "request body larger than 32 MiB");
    // A turn first (waiting at most the call's deadline), before the body is read: a refused call costs nothing.
    const turn = await enterBoth(w.admission, this.#node, w.desc.timeoutMs ?? HTTP_TIMEOUT_MS, () => request.signal);
    if (typeof turn === "string") return this.#refuse(w, turn);
    w.requests++;
    w.busy++;
    const end = () => {
      turn();
      this.#done(w);
    };
    let streaming = false;
    try {
      const body = streamBody ? request.body : hasBody ? new Uint8Array(await request.arrayBuffer()) : null;
      if (body instanceof Uint8Array && body.length > MAX_REQUEST_BODY) {
        return errorResponse(413, "request body larger than 32 MiB");
      }
      const reply = await this.#backend.http(w.handle.id, {
        method: request.method,
        url: request.url,
        headers: withForwarding(headerPairs(request), ctx.client),
        body,
        // What the guest reads of the route (it may cross to a guest host): the rest is in the headers already.
        ctx: { params: ctx.params, route: ctx.route, ...(ctx.rest !== undefined && { rest: ctx.rest }) },
      });
      const failed = (failure: string | undefined) => {
        if (failure === undefined) return;
        w.errors++;
        this.#opts.onIncident?.(serviceName(w), failure);
      };
      failed(reply.failure);
      if (reply.finished) {
        // A streamed body: the call is over when the guest is done writing it.
        streaming = true;
        reply.finished.then(failed).finally(end);
      }
      const nullBody = reply.status === 204 || reply.status === 304 || request.method === "HEAD";
      if (nullBody && reply.body instanceof ReadableStream) reply.body.cancel().catch(() => {});
      const responseBody = nullBody ? null : reply.body as ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer>;
      // A body held whole says its length: the server sends it in one piece, and the access log reads the length
      // rather than counting the body through a stream of its own.
      const headers = responseBody instanceof Uint8Array
        ? withLength(reply.headers, responseBody.length)
        : reply.headers;
      return new Response(responseBody, { status: reply.status, headers });
    } finally {
      if (!streaming) end();
    }
  }

  /** Answers a call the service has no room for: 503 with Retry-After, at once; logged now and then. */
  #refuse(w: Workload, why: Refusal): Response {
    const name = w.spec.service.name;
    const { concurrency, queue } = w.admission;
    const now = this.#now();
    w.refusedSince++;
    if (why !== "aborted" && (w.refusedLoggedAt === undefined || now - w.refusedLoggedAt >= OVERLOAD_LOG_MS)) {
      w.logs.append(
        "system",
        `overloaded: ${w.refusedSince} call(s) answered 503 (${concurrency} run at once, ${queue} may wait)`,
      );
      w.refusedLoggedAt = now;
      w.refusedSince = 0;
    }
    return overloaded(name, why, w.admission, RETRY_AFTER_S);
  }

  /** Kills the guest hosts (or stops the in-process watchdog); the runtime serves no more calls. */
  close(): void {
    this.#backend.close();
  }

  #done(w: Workload): void {
    w.busy--;
    if (w.busy === 0) w.idle?.();
  }

  #hostLost(ids: string[], why: string): void {
    this.#opts.log?.(`wasm: ${why}${ids.length > 0 ? ` (calls in flight for ${ids.join(", ")})` : ""}`);
    for (const id of ids) {
      const w = this.#workloads.get(id);
      if (!w) continue;
      w.incidents++;
      w.logs.append("system", `incident: ${why}`);
    }
  }

  #get(handle: WorkloadHandle): Workload {
    const w = this.#workloads.get(handle.id);
    if (!w) throw new OrcaError("not_found", `no Wasm workload ${handle.id}`);
    return w;
  }

  #setState(w: Workload, state: WorkloadState, message?: string): void {
    w.state = state;
    w.since = this.#now();
    w.message = message;
  }
}

function serviceName(w: Workload): string {
  return `${w.spec.service.project}/${w.spec.service.name}`;
}
