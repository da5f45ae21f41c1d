/** The Wasm implementation of `Runtime`: components served in-process. */

import { OrcaError } from "../../errors.ts";
import { LogBuffer } from "../logs.ts";
import type {
  ExecResult,
  HttpContext,
  HttpServing,
  JobInput,
  JobResult,
  JobRunning,
  LogLine,
  LogOpts,
  ResourceStats,
  Runtime,
  WorkloadHandle,
  WorkloadSpec,
  WorkloadState,
  WorkloadStatus,
} from "../types.ts";
import {
  compileComponent,
  type CompiledComponent,
  DEFAULT_MEMORY_LIMIT,
  type GuestExports,
  type GuestKind,
} from "./compile.ts";
import { concat, OutputTail } from "../bytes.ts";
import { buildTree, type Mount, mountFilesystem } from "./files.ts";
import { INTERRUPT_EXPORT } from "./instrument.ts";
import { errorResponse, errorText, type Guest, logIo, runCommand } from "./guest.ts";
import { InstancePool } from "./pool.ts";
import { cgiEnv, parseCgiOutput } from "./wagi.ts";
import { type GuestIo, sandboxImports, wasiHttp } from "./wasi.ts";
import { Watchdog } from "./watchdog.ts";

export interface WasmRuntimeOptions {
  /** Where jco's transpiled output is cached. */
  cacheDir: string;
  /** Reads module bytes by content hash (from the node's store). */
  loadModule(hash: string): Promise<Uint8Array>;
  /** Reads a mounted file's bytes by content hash (`[service.wasm] files`). */
  loadBlob?(hash: string): Promise<Uint8Array>;
  /** Pre-made instances per workload. */
  poolSize?: number;
  /** A service with no call for this long drops its instances (scale to zero; default 60 s). */
  idleMs?: number;
  now?: () => number;
  /** Told when a guest traps or fails outside its own control (for `orca.instance.crashed`). */
  onIncident?: (service: string, error: string) => void;
}

interface Workload {
  handle: WorkloadHandle;
  spec: WorkloadSpec;
  compiled: CompiledComponent;
  pool: InstancePool<Guest>;
  logs: LogBuffer;
  state: WorkloadState;
  since: number;
  message?: string;
  busy: Set<Guest>;
  /** Message handlers (`orca:jobs/handler`) keep their instances between calls. */
  reusable: Guest[];
  /** `[service.wasm] files`, as trees. */
  mounts: Mount[];
  /** When the last call started (for scale to zero). */
  lastUsed: number;
  requests: number;
  errors: number;
  idle?: () => void;
}

const MAX_WAGI_OUTPUT = 32 * 1024 * 1024;
/** A reused handler instance is replaced after this many calls (bounds leaks in the guest). */
const MAX_CALLS_PER_INSTANCE = 1000;
/** Default deadlines: an HTTP request, and a job (cron firing, message). */
const HTTP_TIMEOUT_MS = 10_000;
const JOB_TIMEOUT_MS = 30_000;
const TAIL_BYTES = 4096;

export class WasmRuntime implements Runtime, HttpServing, JobRunning {
  readonly kind = "wasm" as const;
  readonly #opts: WasmRuntimeOptions;
  readonly #now: () => number;
  readonly #compiled = new Map<string, Promise<CompiledComponent>>();
  readonly #workloads = new Map<string, Workload>();
  readonly #watchdog = new Watchdog();

  readonly #idleTimer: ReturnType<typeof setInterval>;

  constructor(opts: WasmRuntimeOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const idleMs = opts.idleMs ?? 60_000;
    this.#idleTimer = setInterval(() => this.#scaleIdleToZero(idleMs), Math.max(10, Math.min(idleMs / 4, 15_000)));
    Deno.unrefTimer(this.#idleTimer as unknown as number);
  }

  /** Services idle for `idleMs` keep no instances; their next call makes one (~0.3 ms for a C guest). */
  #scaleIdleToZero(idleMs: number): void {
    const now = this.#now();
    for (const w of this.#workloads.values()) {
      if (w.state !== "running" || w.busy.size > 0 || now - w.lastUsed < idleMs) continue;
      if (w.pool.ready.length === 0 && w.reusable.length === 0) continue;
      w.pool.shrink();
      w.reusable.length = 0;
    }
  }

  /** Compiles (or reuses) the module of `hash` with its memory capped; bad bytes reject with an OrcaError. */
  compile(hash: string, memoryLimitBytes = DEFAULT_MEMORY_LIMIT): Promise<CompiledComponent> {
    const key = `${hash}@${memoryLimitBytes}`;
    let compiled = this.#compiled.get(key);
    if (!compiled) {
      compiled = this.#opts.loadModule(hash).then((bytes) =>
        compileComponent(bytes, hash, this.#opts.cacheDir, memoryLimitBytes)
      );
      compiled.catch(() => this.#compiled.delete(key));
      this.#compiled.set(key, compiled);
    }
    return compiled;
  }

  async create(spec: WorkloadSpec): Promise<WorkloadHandle> {
    const hash = spec.service.module_hash;
    if (!hash) throw new OrcaError("invalid", `service ${spec.service.name} has no module`, { where: spec.id });
    if (this.#workloads.has(spec.id)) throw new OrcaError("conflict", `workload ${spec.id} already exists`);
    const compiled = await this.compile(hash, spec.service.resources.memory ?? DEFAULT_MEMORY_LIMIT);
    const handle: WorkloadHandle = { id: spec.id, runtime: "wasm" };
    const logs = new LogBuffer(2000, this.#now);
    const workload: Workload = {
      handle,
      spec,
      compiled,
      logs,
      pool: new InstancePool(
        () => this.#instantiate(workload),
        this.#opts.poolSize ?? 4,
        (err) => logs.append("system", `cannot pre-make an instance: ${errorText(err)}`),
      ),
      state: "created",
      since: this.#now(),
      busy: new Set(),
      reusable: [],
      mounts: await this.#mounts(spec),
      lastUsed: this.#now(),
      requests: 0,
      errors: 0,
    };
    this.#workloads.set(spec.id, workload);
    return handle;
  }

  async start(handle: WorkloadHandle): Promise<void> {
    const w = this.#get(handle);
    try {
      await w.pool.warm();
    } catch (err) {
      this.#setState(w, "failed", `cannot instantiate: ${errorText(err)}`);
      throw new OrcaError("wasm", `service ${w.spec.service.name} cannot start: ${errorText(err)}`, {
        where: w.spec.id,
      });
    }
    this.#setState(w, "running");
    w.logs.append("system", `started (${w.compiled.kind === "http" ? "wasi:http handler" : "WAGI command"})`);
  }

  async stop(handle: WorkloadHandle, timeoutMs: number): Promise<void> {
    const w = this.#get(handle);
    if (w.state === "stopped") return;
    this.#setState(w, "stopped");
    w.pool.close();
    if (w.busy.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        w.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    w.logs.append("system", "stopped");
  }

  async remove(handle: WorkloadHandle): Promise<void> {
    const w = this.#workloads.get(handle.id);
    if (!w) return;
    await this.stop(handle, 0);
    w.logs.close();
    this.#workloads.delete(handle.id);
  }

  // deno-lint-ignore require-await
  async status(handle: WorkloadHandle): Promise<WorkloadStatus> {
    const w = this.#get(handle);
    const instances = w.state === "running" ? w.pool.ready.length + w.busy.size + w.reusable.length : w.busy.size;
    const message = w.message ?? (w.state === "running" && instances === 0 ? "idle: scaled to zero" : undefined);
    return { state: w.state, instances, since: w.since, ...(message && { message }) };
  }

  logs(handle: WorkloadHandle, opts?: LogOpts): AsyncIterable<LogLine> {
    return this.#get(handle).logs.read(opts);
  }

  async exec(handle: WorkloadHandle, cmd: string[]): Promise<ExecResult> {
    const w = this.#get(handle);
    if (w.compiled.kind !== "command") {
      throw new OrcaError(
        "unsupported",
        `service ${w.spec.service.name} is a wasi:http handler; exec needs a WASI command`,
      );
    }
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    const guest = await this.#instantiate(w, [w.spec.service.name, ...cmd]);
    guest.io = {
      env: { ...w.spec.service.env },
      stdin: new Uint8Array(),
      stdout: (b) => stdout.push(b),
      stderr: (b) => stderr.push(b),
    };
    const disarm = this.#watchdog.arm(guest.flags, w.spec.service.limits.timeout_ms ?? JOB_TIMEOUT_MS);
    try {
      const exitCode = await runCommand(guest);
      return { exitCode, stdout: concat(stdout), stderr: concat(stderr) };
    } finally {
      disarm();
    }
  }

  // deno-lint-ignore require-await
  async stats(handle: WorkloadHandle): Promise<ResourceStats> {
    const w = this.#get(handle);
    let memoryBytes = 0;
    for (const g of [...w.pool.ready, ...w.busy, ...w.reusable]) {
      for (const m of g.memories) memoryBytes += m.buffer.byteLength;
    }
    return {
      memoryBytes,
      ...(w.spec.service.resources.memory && { memoryLimitBytes: w.spec.service.resources.memory }),
      requests: w.requests,
      errors: w.errors,
      instances: w.pool.ready.length + w.busy.size + w.reusable.length,
    };
  }

  /** How the workload's guest is driven: `http` handler or `command`. */
  guestKind(handle: WorkloadHandle): GuestKind {
    return this.#get(handle).compiled.kind;
  }

  async runJob(handle: WorkloadHandle, input: JobInput): Promise<JobResult> {
    const w = this.#get(handle);
    if (w.compiled.kind === "http") {
      throw new OrcaError(
        "unsupported",
        `service ${w.spec.service.name} is a wasi:http handler; jobs need a WASI command or an orca:jobs/handler`,
      );
    }
    if (w.state !== "running") throw new OrcaError("unavailable", `service ${w.spec.service.name} is ${w.state}`);
    const started = performance.now();
    const tail = new OutputTail(TAIL_BYTES);
    const log = this.#logIo(w);
    w.requests++;
    w.lastUsed = this.#now();
    const reuse = w.compiled.kind === "handler";
    const guest = (reuse ? w.reusable.pop() : undefined) ?? await w.pool.take();
    w.busy.add(guest);
    guest.io = {
      env: { ...w.spec.service.env, ...input.env },
      stdin: input.stdin,
      stdout: (b) => {
        tail.push(b);
        log.stdout(b);
      },
      stderr: (b) => {
        tail.push(b);
        log.stderr(b);
      },
    };
    let keep = false;
    const disarm = this.#watchdog.arm(guest.flags, w.spec.service.limits.timeout_ms ?? JOB_TIMEOUT_MS);
    try {
      if (guest.exports.kind === "handler") {
        try {
          await guest.exports.handle(input.topic ?? "", input.stdin);
        } catch (refusal) {
          if (typeof refusal !== "string") throw refusal; // a trap, not the guest's own err result
          keep = true;
          w.errors++;
          return { exitCode: 1, outputTail: tail.text(), durationMs: performance.now() - started, error: refusal };
        }
        keep = true;
        return { exitCode: 0, outputTail: tail.text(), durationMs: performance.now() - started };
      }
      const exitCode = await runCommand(guest);
      if (exitCode !== 0) w.errors++;
      return { exitCode, outputTail: tail.text(), durationMs: performance.now() - started };
    } catch (err) {
      w.errors++;
      const error = this.#describeFailure(w, guest, err, JOB_TIMEOUT_MS);
      w.logs.append("system", `job failed: ${error}`);
      this.#opts.onIncident?.(`${w.spec.service.project}/${w.spec.service.name}`, error);
      return { exitCode: -1, outputTail: tail.text(), durationMs: performance.now() - started, error };
    } finally {
      disarm();
      log.flush();
      w.busy.delete(guest);
      // A handler that trapped (or whose deadline fired as it returned) is thrown away; one that answered is reused.
      const fresh = ++guest.calls < MAX_CALLS_PER_INSTANCE;
      if (reuse && keep && fresh && !Watchdog.fired(guest.flags) && w.state === "running" && w.reusable.length < 4) {
        w.reusable.push(guest);
      }
      if (w.busy.size === 0) w.idle?.();
    }
  }

  async serveHttp(handle: WorkloadHandle, request: Request, ctx: HttpContext): Promise<Response> {
    const w = this.#get(handle);
    if (w.state !== "running") return errorResponse(503, `service ${w.spec.service.name} is ${w.state}`);
    if (w.compiled.kind === "handler") {
      return errorResponse(500, `service ${w.spec.service.name} is a message handler, not an HTTP one`);
    }
    w.requests++;
    w.lastUsed = this.#now();
    const guest = await w.pool.take();
    w.busy.add(guest);
    const disarm = this.#watchdog.arm(guest.flags, w.spec.service.limits.timeout_ms ?? HTTP_TIMEOUT_MS);
    try {
      return w.compiled.kind === "http"
        ? await this.#serveHandler(w, guest, request, ctx)
        : await this.#serveWagi(w, guest, request, ctx);
    } catch (err) {
      w.errors++;
      const error = this.#describeFailure(w, guest, err, HTTP_TIMEOUT_MS);
      w.logs.append("system", `request ${request.method} ${new URL(request.url).pathname} failed: ${error}`);
      this.#opts.onIncident?.(`${w.spec.service.project}/${w.spec.service.name}`, error);
      return Watchdog.fired(guest.flags)
        ? errorResponse(504, "the service did not answer within its deadline")
        : errorResponse(500, "the service failed to handle the request");
    } finally {
      disarm();
      w.busy.delete(guest);
      if (w.busy.size === 0) w.idle?.();
    }
  }

  async #serveHandler(w: Workload, guest: Guest, request: Request, ctx: HttpContext): Promise<Response> {
    const headers = new Headers(request.headers);
    for (const [name, value] of Object.entries(ctx.params)) headers.set(`x-orca-param-${name}`, value);
    headers.set("x-orca-route", ctx.route);
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const body = hasBody ? await request.arrayBuffer() : undefined;
    const forwarded = new Request(request.url, { method: request.method, headers, body });
    guest.io = this.#logIo(w);
    if (guest.exports.kind !== "http") throw new OrcaError("internal", "not an http guest");
    const response = await wasiHttp.handleIncomingRequest(forwarded, guest.exports.handle as never);
    // The guest is done once the body is fully produced; buffer it so a trap surfaces here.
    const produced = await response.arrayBuffer();
    return new Response(produced, { status: response.status, headers: response.headers });
  }

  async #serveWagi(w: Workload, guest: Guest, request: Request, ctx: HttpContext): Promise<Response> {
    const body = new Uint8Array(await request.arrayBuffer());
    const out: Uint8Array[] = [];
    let size = 0;
    const log = this.#logIo(w);
    guest.io = {
      env: { ...w.spec.service.env, ...cgiEnv(request, ctx, body) },
      stdin: body,
      stdout: (bytes) => {
        size += bytes.length;
        if (size > MAX_WAGI_OUTPUT) throw new OrcaError("invalid", "response larger than 32 MiB");
        out.push(bytes);
      },
      stderr: log.stderr,
    };
    const code = await runCommand(guest);
    log.flush();
    if (code !== 0) throw new OrcaError("wasm", `the handler exited with code ${code}`);
    const response = parseCgiOutput(concat(out));
    if (!response) {
      throw new OrcaError(
        "wasm",
        "the handler wrote no CGI header block (e.g. `Content-Type: text/plain` and a blank line)",
      );
    }
    return response;
  }

  #logIo(w: Workload): GuestIo & { flush(): void } {
    return logIo(w.logs, w.spec.service.env);
  }

  async #mounts(spec: WorkloadSpec): Promise<Mount[]> {
    const mounts: Mount[] = [];
    for (const [guestPath, m] of Object.entries(spec.service.wasm.files)) {
      const files: [string, Uint8Array][] = [];
      for (const [path, hash] of Object.entries(m.tree ?? {})) {
        if (!this.#opts.loadBlob) throw new OrcaError("unsupported", "this runtime has no file store for mounts");
        files.push([path, await this.#opts.loadBlob(hash)]);
      }
      mounts.push({ guestPath, tree: buildTree(files), rw: m.rw });
    }
    return mounts;
  }

  async #instantiate(w: Workload, args: string[] = [w.spec.service.name]): Promise<Guest> {
    const guest: Guest = {
      exports: undefined as unknown as GuestExports,
      io: this.#logIo(w),
      memories: [],
      flags: [],
      calls: 0,
    };
    const imports = sandboxImports({
      args,
      allowedHosts: w.spec.service.wasm.allowed_hosts,
      io: () => guest.io,
      ...(w.mounts.length > 0 && { filesystem: mountFilesystem(w.mounts) }),
    });
    guest.exports = await w.compiled.instantiate(imports, (instance) => {
      const memory = instance.exports.memory;
      if (memory instanceof WebAssembly.Memory) guest.memories.push(memory);
      const flag = instance.exports[INTERRUPT_EXPORT];
      if (flag instanceof WebAssembly.Memory) guest.flags.push(flag.buffer as SharedArrayBuffer);
    });
    return guest;
  }

  /** Stops the watchdog thread and the idle timer (the runtime serves no more calls). */
  close(): void {
    this.#watchdog.close();
    clearInterval(this.#idleTimer);
  }

  #describeFailure(w: Workload, guest: Guest, err: unknown, fallbackMs: number): string {
    if (!Watchdog.fired(guest.flags)) return errorText(err);
    return `deadline exceeded: stopped after ${
      w.spec.service.limits.timeout_ms ?? fallbackMs
    } ms ([service.limits] timeout_ms)`;
  }

  #get(handle: WorkloadHandle): Workload {
    const w = this.#workloads.get(handle.id);
    if (!w) throw new OrcaError("not_found", `no Wasm workload ${handle.id}`);
    return w;
  }

  #setState(w: Workload, state: WorkloadState, message?: string): void {
    if (state !== "running") w.reusable.length = 0;
    w.state = state;
    w.since = this.#now();
    w.message = message;
  }
}
