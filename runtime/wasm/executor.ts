/**
 * Runs guest calls: the part of the Wasm runtime that holds compiled
 * components and instance pools. It runs in the server process (`workers: 0`)
 * or inside each guest host process (host.ts), and speaks only plain data
 * (WireRequest in, WireResponse out) so the same code serves both.
 */

import { OrcaError } from "../../errors.ts";
import type { ExecResult, JobInput } from "../types.ts";
import { concat, OutputTail } from "../bytes.ts";
import { type CompiledComponent, type GuestExports, loadComponent } from "./component.ts";
import { buildTree, type Mount, mountFilesystem } from "./files.ts";
import { errorText, type Guest, logIo, runCommand } from "./guest.ts";
import { INTERRUPT_EXPORT } from "./instrument.ts";
import { InstancePool } from "./pool.ts";
import type { StreamingCall } from "./body.ts";
import { serveWagi } from "./wagi_call.ts";
import { serveWasiHttp } from "./http_call.ts";
import type { GuestIo } from "./wasi.ts";
import { whyNotReset } from "./snapshot.ts";
import { Watchdog } from "./watchdog.ts";
import { Deadlines } from "./deadlines.ts";
import {
  type GuestBackend,
  HTTP_TIMEOUT_MS,
  JOB_TIMEOUT_MS,
  type JobOutcome,
  type LogSink,
  wireError,
  type WireRequest,
  type WireResponse,
  type WorkloadDesc,
  type WorkloadStats,
} from "./backend.ts";

export interface ExecutorOptions {
  log: LogSink;
  /** A workload with no call for this long drops its instances (scale to zero). */
  idleMs: number;
  now?: () => number;
}

interface Loaded {
  desc: WorkloadDesc;
  compiled: CompiledComponent;
  pool: InstancePool<Guest>;
  /** Message handlers (`orca:jobs/handler`), and HTTP handlers with `instance = "reuse"`, keep their instances. */
  reusable: Guest[];
  /** Whether HTTP requests reuse instances; why not, when the service asked and its guest cannot. */
  reuse: boolean;
  notReused?: string;
  /** Whether a request has been served by a reused instance (a guest that fails on its second is not reusable). */
  reusedOnce: boolean;
  /** Whether isolated HTTP requests run on instances reset to their saved state (snapshot.ts); why not, if not. */
  reset: boolean;
  notReset?: string;
  /** Reset instances that served a request and wait for their state to be put back (on a microtask). */
  dirty: Guest[];
  /** Instances made so far. */
  made: number;
  busy: Set<Guest>;
  mounts: Mount[];
  lastUsed: number;
}

/** Why a JavaScript guest with a FetchEvent listener is never reused. */
const FETCH_EVENT = 'its guest answers through a FetchEvent listener (addEventListener("fetch")), whose engine ' +
  "answers one request per instance; export incomingHandler to be reused";
/** A reused instance (a message handler's, or an HTTP one's) is replaced after this many calls (bounds leaks). */
const MAX_CALLS_PER_INSTANCE = 1000;
const TAIL_BYTES = 4096;

/** Runs guests in the calling process. */
export class Executor implements GuestBackend {
  readonly #opts: ExecutorOptions;
  readonly #now: () => number;
  readonly #loaded = new Map<string, Promise<Loaded>>();
  readonly #deadlines = new Deadlines();
  readonly #idleTimer: ReturnType<typeof setInterval>;

  constructor(opts: ExecutorOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const idleMs = opts.idleMs;
    this.#idleTimer = setInterval(() => this.#scaleIdleToZero(idleMs), Math.max(10, Math.min(idleMs / 4, 15_000)));
    Deno.unrefTimer(this.#idleTimer as unknown as number);
  }

  /** Compiles the workload and makes its first instance (errors surface here); the pool fills in the background. */
  load(desc: WorkloadDesc): Promise<void> {
    let loaded = this.#loaded.get(desc.id);
    if (!loaded) {
      loaded = this.#load(desc);
      loaded.catch(() => this.#loaded.delete(desc.id));
      this.#loaded.set(desc.id, loaded);
    }
    return loaded.then(() => {});
  }

  async #load(desc: WorkloadDesc): Promise<Loaded> {
    // A preview1 command runs on the direct host unless it mounts files (those need the component's filesystem).
    const compiled = await loadComponent(desc.prepared, { direct: desc.mounts.length === 0 });
    const asked = desc.instance === "reuse" && compiled.kind === "http";
    const reuse = asked && !desc.prepared.fetchEvent;
    // Isolated HTTP requests: on reset instances, unless something says why not.
    const isolatedHttp = compiled.kind === "http" && !reuse;
    const notReset = isolatedHttp ? whyNotReset(desc.prepared, desc.mounts) : undefined;
    // WAGI commands on the direct host too, when their module exports its state (else a fresh instance each, as
    // before: nothing to say).
    const resetCommand = compiled.kind === "command" && compiled.direct && desc.prepared.preview1?.resettable === true;
    const reset = (isolatedHttp && notReset === undefined) || resetCommand;
    const l: Loaded = {
      desc,
      compiled,
      reuse,
      ...(asked && desc.prepared.fetchEvent && { notReused: FETCH_EVENT }),
      reusedOnce: false,
      reset,
      ...(notReset && { notReset }),
      dirty: [],
      made: 0,
      pool: new InstancePool(
        () => this.#instantiate(l),
        // Reset and reused instances serve request after request: one made ahead is enough.
        reset || reuse ? 1 : desc.poolSize,
        (err) => this.#opts.log(desc.id, "system", `cannot pre-make an instance: ${errorText(err)}`),
        (guest) => this.#drop(guest),
      ),
      reusable: [],
      busy: new Set(),
      mounts: desc.mounts.map((m) => ({ guestPath: m.guestPath, rw: m.rw, tree: buildTree(m.files) })),
      lastUsed: this.#now(),
    };
    if (l.notReused) this.#opts.log(desc.id, "system", `instance = "reuse" is not possible: ${l.notReused}`);
    if (l.notReset) this.#opts.log(desc.id, "system", `each request gets a fresh instance: ${l.notReset}`);
    await l.pool.warm();
    return l;
  }

  /** Drops a workload's instances and compiled code; calls in flight finish. */
  unload(id: string): void {
    const loaded = this.#loaded.get(id);
    this.#loaded.delete(id);
    loaded?.then((l) => {
      l.pool.close();
      this.#dropReusable(l);
      l.compiled.shrink();
    }, () => {});
  }

  /** Instances alive and the bytes of their linear memories. */
  async stats(id: string): Promise<WorkloadStats> {
    const loaded = this.#loaded.get(id);
    if (!loaded) return { instances: 0, memoryBytes: 0 };
    const l = await loaded;
    const guests = [...l.pool.ready, ...l.busy, ...l.reusable, ...l.dirty];
    let memoryBytes = l.compiled.keptBytes(); // memories kept for the next instances
    for (const g of guests) memoryBytes += memoryOf(g) + (g.snapshot?.bytes ?? 0);
    return {
      instances: guests.length,
      memoryBytes,
      made: l.made,
      ...(l.notReused && { notReused: l.notReused }),
      ...(l.notReset && { notReset: l.notReset }),
    };
  }

  async http(id: string, req: WireRequest, begin?: () => Promise<void>): Promise<WireResponse> {
    const l = await this.#get(id);
    if (l.compiled.kind === "handler") {
      return wireError(500, `service ${l.desc.name} is a message handler, not an HTTP one`);
    }
    l.lastUsed = this.#now();
    const guest = (l.reuse ? l.reusable.pop() : l.reset ? this.#cleanInstance(l) : undefined) ?? await l.pool.take();
    const served = guest.calls;
    await begin?.();
    l.busy.add(guest);
    const failed = (err: unknown) => {
      const failure = this.#describeFailure(l, guest, err, HTTP_TIMEOUT_MS);
      this.#opts.log(id, "system", `request ${req.method} ${new URL(req.url).pathname} failed: ${failure}`);
      return failure;
    };
    const timeoutMs = l.desc.timeoutMs ?? HTTP_TIMEOUT_MS;
    const deadline = performance.now() + timeoutMs;
    // The clock starts before the guest does (the stop runs later, once `call` exists).
    const disarm = this.#deadlines.arm(guest, timeoutMs, () => call.stop());
    const call: StreamingCall = l.compiled.kind === "http"
      ? serveWasiHttp(guest, { req, log: this.#logIo(l), failed, deadline })
      : serveWagi(guest, { env: l.desc.env, req, log: this.#logIo(l), failed, deadline });
    const cleanUp = (ok: boolean) => {
      disarm();
      l.busy.delete(guest);
      this.#afterHttp(l, guest, ok);
    };
    try {
      const response = await call.response;
      if (response.finished) {
        response.finished.then((failure) => cleanUp(failure === undefined), () => cleanUp(false));
      } else cleanUp(response.failure === undefined);
      // A guest that fails on its second request having never served a second one is not reusable (a FetchEvent
      // guest whose listener answers once, not recognised as one): say so, and serve this request afresh.
      if (response.failure !== undefined && served > 0 && l.reuse && !l.reusedOnce) {
        this.#notReusable(l, `it failed on the second request an instance served (${response.failure})`);
        if (!(req.body instanceof ReadableStream)) return await this.http(id, req);
      }
      return response;
    } catch (err) {
      cleanUp(false);
      const failure = failed(err);
      return Watchdog.fired(guest.flags)
        ? { ...wireError(504, "the service did not answer within its deadline"), failure }
        : { ...wireError(500, "the service failed to handle the request"), failure };
    }
  }

  /**
   * After an HTTP call: a reused instance is kept for the next request unless the call failed or missed its
   * deadline, it served `maxReuses` requests, or its memory grew past twice its first size (and 32 MiB more); the
   * others give their memories back.
   */
  #afterHttp(l: Loaded, guest: Guest, ok: boolean): void {
    guest.calls++;
    if (l.reset) return this.#afterReset(l, guest, ok);
    if (ok && guest.calls > 1) l.reusedOnce = true;
    const keep = l.reuse && ok && !Watchdog.fired(guest.flags) &&
      guest.calls < (l.desc.maxReuses ?? MAX_CALLS_PER_INSTANCE) &&
      memoryOf(guest) <= Math.max(2 * guest.firstBytes, guest.firstBytes + 32 * 2 ** 20) &&
      this.#loaded.has(l.desc.id) && l.reusable.length < l.desc.poolSize;
    if (keep) l.reusable.push(guest);
    else this.#drop(guest);
  }

  /**
   * After an isolated HTTP call on an instance with a snapshot: its state is put back at once (a microtask: a timer
   * per request, Node's kind under npm packages, kept every earlier one alive here), or by the next request that
   * finds no clean instance. One that failed, missed its deadline, served `maxReuses` requests, or is one too many,
   * is dropped.
   */
  #afterReset(l: Loaded, guest: Guest, ok: boolean): void {
    const keep = ok && guest.snapshot && !Watchdog.fired(guest.flags) &&
      guest.calls < (l.desc.maxReuses ?? MAX_CALLS_PER_INSTANCE) && this.#loaded.has(l.desc.id) &&
      l.reusable.length + l.dirty.length < l.desc.poolSize;
    if (!keep) return this.#drop(guest);
    l.dirty.push(guest);
    if (l.dirty.length === 1) {
      queueMicrotask(() => {
        for (let g = l.dirty.pop(); g; g = l.dirty.pop()) if (this.#restored(g)) l.reusable.push(g);
      });
    }
  }

  /** An instance in its saved state: a clean one, else a dirty one put back now; undefined when there is none. */
  #cleanInstance(l: Loaded): Guest | undefined {
    const clean = l.reusable.pop();
    if (clean) return clean;
    for (let g = l.dirty.pop(); g; g = l.dirty.pop()) if (this.#restored(g)) return g;
    return undefined;
  }

  #notReusable(l: Loaded, why: string): void {
    if (!l.reuse) return;
    l.reuse = false;
    l.notReused = why;
    this.#dropReusable(l);
    this.#opts.log(l.desc.id, "system", `instance = "reuse" is not possible: ${why}; each request gets its own`);
  }

  async job(id: string, input: JobInput, begin?: () => Promise<void>): Promise<JobOutcome> {
    const l = await this.#get(id);
    if (l.compiled.kind === "http") {
      throw new OrcaError(
        "unsupported",
        `service ${l.desc.name} is a wasi:http handler; jobs need a WASI command or an orca:jobs/handler`,
      );
    }
    const started = performance.now();
    const tail = new OutputTail(TAIL_BYTES);
    const log = this.#logIo(l);
    l.lastUsed = this.#now();
    const reuse = l.compiled.kind === "handler";
    const guest = (reuse ? l.reusable.pop() : undefined) ?? await l.pool.take();
    await begin?.();
    l.busy.add(guest);
    const timeoutMs = l.desc.timeoutMs ?? JOB_TIMEOUT_MS;
    guest.io = {
      env: { ...l.desc.env, ...input.env },
      stdin: input.stdin,
      deadline: performance.now() + timeoutMs,
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
    const result = (exitCode: number, error?: string): JobOutcome => ({
      exitCode,
      outputTail: tail.text(),
      durationMs: performance.now() - started,
      ...(error !== undefined && { error }),
    });
    const disarm = this.#deadlines.arm(guest, timeoutMs);
    try {
      if (guest.exports.kind === "handler") {
        try {
          await guest.exports.handle(input.topic ?? "", input.stdin);
        } catch (refusal) {
          if (typeof refusal !== "string") throw refusal; // a trap, not the guest's own err result
          keep = true;
          return result(1, refusal);
        }
        keep = true;
        return result(0);
      }
      return result(await runCommand(guest));
    } catch (err) {
      const error = this.#describeFailure(l, guest, err, JOB_TIMEOUT_MS);
      this.#opts.log(id, "system", `job failed: ${error}`);
      return { ...result(-1, error), incident: true };
    } finally {
      disarm();
      log.flush();
      l.busy.delete(guest);
      // A handler that trapped (or whose deadline fired as it returned) is thrown away; one that answered is reused.
      const fresh = ++guest.calls < MAX_CALLS_PER_INSTANCE;
      if (reuse && keep && fresh && !Watchdog.fired(guest.flags) && this.#loaded.has(id) && l.reusable.length < 4) {
        l.reusable.push(guest);
      } else this.#drop(guest);
    }
  }

  async exec(id: string, cmd: string[]): Promise<ExecResult> {
    const l = await this.#get(id);
    if (l.compiled.kind !== "command") {
      throw new OrcaError("unsupported", `service ${l.desc.name} is a wasi:http handler; exec needs a WASI command`);
    }
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    const guest = await this.#instantiate(l, [l.desc.name, ...cmd]);
    const timeoutMs = l.desc.timeoutMs ?? JOB_TIMEOUT_MS;
    guest.io = {
      env: { ...l.desc.env },
      stdin: new Uint8Array(),
      deadline: performance.now() + timeoutMs,
      stdout: (b) => stdout.push(b),
      stderr: (b) => stderr.push(b),
    };
    const disarm = this.#deadlines.arm(guest, timeoutMs);
    try {
      const exitCode = await runCommand(guest);
      return { exitCode, stdout: concat(stdout), stderr: concat(stderr) };
    } finally {
      disarm();
      this.#drop(guest);
    }
  }

  /** Stops the watchdog thread and the idle timer. */
  close(): void {
    clearInterval(this.#idleTimer);
    for (const id of [...this.#loaded.keys()]) this.unload(id);
    this.#deadlines.close();
  }

  #logIo(l: Loaded): GuestIo & { flush(): void } {
    return logIo((stream, text) => this.#opts.log(l.desc.id, stream, text), l.desc.env);
  }

  async #instantiate(l: Loaded, args: string[] = [l.desc.name]): Promise<Guest> {
    l.made++;
    const guest: Guest = {
      exports: undefined as unknown as GuestExports,
      io: this.#logIo(l),
      memories: [],
      flags: [],
      calls: 0,
      firstBytes: 0,
    };
    const sandbox = {
      args,
      allowedHosts: l.desc.allowedHosts,
      io: () => guest.io,
      ...(l.mounts.length > 0 && { filesystem: mountFilesystem(l.mounts) }),
    };
    const { release, ...exports } = await l.compiled.instantiate(sandbox, (instance) => {
      const memory = instance.exports.memory;
      if (memory instanceof WebAssembly.Memory) guest.memories.push(memory);
      const flag = instance.exports[INTERRUPT_EXPORT];
      if (flag instanceof WebAssembly.Memory) guest.flags.push(flag.buffer as SharedArrayBuffer);
    }, { reuse: l.reuse, snapshot: l.reset });
    const { snapshot, ...rest } = exports;
    guest.exports = rest as GuestExports;
    if (release) guest.release = release;
    if (snapshot) guest.snapshot = snapshot;
    guest.firstBytes = memoryOf(guest);
    this.#deadlines.register(guest);
    return guest;
  }

  /** Workloads idle for `idleMs` keep no instances; their next call makes one (~0.3 ms for a C guest). */
  #scaleIdleToZero(idleMs: number): void {
    const now = this.#now();
    for (const loaded of this.#loaded.values()) {
      loaded.then((l) => {
        if (l.busy.size > 0 || now - l.lastUsed < idleMs) return;
        l.pool.shrink();
        this.#dropReusable(l);
        l.compiled.shrink();
      }, () => {});
    }
  }

  /** Lets go of an instance that will not be called again: its memories go back, and its watchdog slot. */
  #drop(guest: Guest): void {
    guest.release?.();
    this.#deadlines.release(guest);
  }

  /** Drops a workload's kept instances. */
  #dropReusable(l: Loaded): void {
    for (const g of l.reusable.splice(0)) this.#drop(g);
    for (const g of l.dirty.splice(0)) this.#drop(g);
  }

  /** Puts a reset instance's saved state back; drops it when that cannot be done. */
  #restored(guest: Guest): boolean {
    if (guest.snapshot!.restore()) return true;
    this.#drop(guest);
    return false;
  }

  #describeFailure(l: Loaded, guest: Guest, err: unknown, fallbackMs: number): string {
    if (!Watchdog.fired(guest.flags)) return errorText(err);
    return `deadline exceeded: stopped after ${l.desc.timeoutMs ?? fallbackMs} ms ([service.limits] timeout_ms)`;
  }

  #get(id: string): Promise<Loaded> {
    const loaded = this.#loaded.get(id);
    if (!loaded) throw new OrcaError("not_found", `workload ${id} is not loaded here`);
    return loaded;
  }
}

/** Bytes of a guest's linear memories. */
function memoryOf(guest: Guest): number {
  return guest.memories.reduce((n, m) => n + m.buffer.byteLength, 0);
}
