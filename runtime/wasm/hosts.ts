/**
 * Guest host processes (host.ts), supervised: one per core by default, so
 * guests use every core and a guest that stops its host from answering costs
 * only that host. Each call goes to the host with the fewest calls in flight
 * (one that already has the workload loaded on a tie). A call that outlives
 * its deadline by `graceMs` means the in-guest interrupt did not fire (a
 * guest without deadline checks, a hung host): the host is killed with
 * SIGKILL, its calls fail (504 for the late one, 503 for the others), the
 * incident is reported, and a fresh host takes its place.
 */

import { OrcaError } from "../../errors.ts";
import type { ExecResult, JobInput } from "../types.ts";
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
} from "./executor.ts";
import type { HostCall, HostMessage } from "./host.ts";
import { encodeFrame, readFrames } from "./wire.ts";

export interface HostPoolOptions {
  /** How many host processes. */
  size: number;
  /** The compile cache (the only folder hosts may read). */
  cacheDir: string;
  /** Workloads idle this long drop their instances in every host. */
  idleMs: number;
  /** Guest log lines. */
  log: LogSink;
  /** A host was killed or died: the workloads whose calls it failed, and why. */
  onIncident(workloads: string[], why: string): void;
  /** How long past a call's deadline before its host is deemed stuck (default 2 s). */
  graceMs?: number;
}

interface Pending {
  workload: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Settles the call when its host is lost; `late` for the call whose deadline passed. */
  lost(late: boolean, why: string): void;
  timer?: ReturnType<typeof setTimeout>;
}

const STATS_WAIT_MS = 1000;
/** A host that dies sooner than this after starting is replaced only after this long (no crash loop). */
const RESPAWN_PAUSE_MS = 1000;

export class HostPool implements GuestBackend {
  readonly #opts: HostPoolOptions;
  readonly #hosts: Host[] = [];
  readonly #descs = new Map<string, WorkloadDesc>();
  #closed = false;
  /** Hosts killed or dead since the pool started. */
  restarts = 0;

  constructor(opts: HostPoolOptions) {
    this.#opts = opts;
    Deno.mkdirSync(opts.cacheDir, { recursive: true });
    for (let i = 0; i < Math.max(1, opts.size); i++) this.#hosts.push(this.#spawn(i, 0));
  }

  get size(): number {
    return this.#hosts.length;
  }

  async load(desc: WorkloadDesc): Promise<void> {
    this.#descs.set(desc.id, desc);
    const host = this.#pick(desc.id);
    host.inFlight++;
    try {
      await this.#ensure(host, desc);
    } finally {
      host.inFlight--;
    }
  }

  unload(id: string): void {
    this.#descs.delete(id);
    for (const host of this.#hosts) {
      if (host.loaded.delete(id)) host.send({ id: 0, op: "unload", workload: id });
    }
  }

  async stats(id: string): Promise<{ instances: number; memoryBytes: number }> {
    const sum = { instances: 0, memoryBytes: 0 };
    const answers = this.#hosts.filter((h) => h.loaded.has(id)).map((host) => {
      const asked = host.request({ op: "stats", workload: id }, undefined, () => {});
      // A host busy with a long call answers late: count what the others say rather than wait.
      const late = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STATS_WAIT_MS));
      return Promise.race([asked.catch(() => undefined), late]) as Promise<typeof sum | undefined>;
    });
    for (const answer of await Promise.all(answers)) {
      sum.instances += answer?.instances ?? 0;
      sum.memoryBytes += answer?.memoryBytes ?? 0;
    }
    return sum;
  }

  http(id: string, req: WireRequest): Promise<WireResponse> {
    return this.#call(
      id,
      { op: "http", workload: id, req },
      HTTP_TIMEOUT_MS,
      (late, why) =>
        late
          ? { ...wireError(504, "the service did not answer within its deadline"), failure: why }
          : { ...wireError(503, "the service's guest host restarted; try again"), failure: why },
    );
  }

  job(id: string, input: JobInput): Promise<JobOutcome> {
    const started = performance.now();
    return this.#call(id, { op: "job", workload: id, input }, JOB_TIMEOUT_MS, (_late, why) => ({
      exitCode: -1,
      outputTail: "",
      durationMs: performance.now() - started,
      error: why,
      incident: true,
    }));
  }

  exec(id: string, cmd: string[]): Promise<ExecResult> {
    return this.#call(id, { op: "exec", workload: id, cmd }, JOB_TIMEOUT_MS, (_late, why) => {
      throw new OrcaError("unavailable", why);
    });
  }

  /** Kills every host; calls in flight fail. */
  close(): void {
    this.#closed = true;
    for (const host of this.#hosts) host.kill();
  }

  async #call<T>(
    id: string,
    call: DistributiveOmit<HostCall, "id">,
    defaultDeadlineMs: number,
    lost: (late: boolean, why: string) => T,
  ): Promise<T> {
    const desc = this.#descs.get(id);
    if (!desc) throw new OrcaError("not_found", `workload ${id} is not loaded`);
    const host = this.#pick(id);
    host.inFlight++;
    try {
      await this.#ensure(host, desc);
      const deadline = desc.timeoutMs ?? defaultDeadlineMs;
      return await host.request(call, deadline + (this.#opts.graceMs ?? 2000), lost) as T;
    } finally {
      host.inFlight--;
    }
  }

  #ensure(host: Host, desc: WorkloadDesc): Promise<void> {
    let loading = host.loaded.get(desc.id);
    if (!loading) {
      // No deadline of its own: a load waits behind the host's calls, whose deadlines kill it if it is stuck.
      loading = host.request({ op: "load", desc }, undefined, (_late, why) => {
        throw new OrcaError("unavailable", `cannot load ${desc.project}/${desc.name}: ${why}`);
      }) as Promise<void>;
      host.loaded.set(desc.id, loading);
      loading.catch(() => host.loaded.delete(desc.id));
    }
    return loading;
  }

  /** The host with the fewest calls in flight; on a tie, one that has the workload, then the first. */
  #pick(id: string): Host {
    if (this.#closed) throw new OrcaError("unavailable", "the Wasm runtime is shut down");
    let best = this.#hosts[0];
    for (const host of this.#hosts) {
      const fewer = host.inFlight < best.inFlight;
      const tieButLoaded = host.inFlight === best.inFlight && host.loaded.has(id) && !best.loaded.has(id);
      if (fewer || tieButLoaded) best = host;
    }
    return best;
  }

  #spawn(slot: number, pauseMs: number): Host {
    const host = new Host(`guest host ${slot + 1}`, this.#opts, pauseMs, (why, workloads) => {
      if (this.#closed) return;
      this.restarts++;
      this.#opts.onIncident(workloads, `guest host ${slot + 1} ${why}; a new one took its place`);
      const lived = performance.now() - host.startedAt;
      this.#hosts[slot] = this.#spawn(slot, lived < RESPAWN_PAUSE_MS ? RESPAWN_PAUSE_MS : 0);
    });
    return host;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One host process and the calls waiting on it. */
class Host {
  readonly startedAt = performance.now();
  readonly loaded = new Map<string, Promise<void>>();
  inFlight = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #streams = new Map<number, IncomingBody>();
  readonly #opts: HostPoolOptions;
  readonly #ready: Promise<void>;
  readonly #onLost: (why: string, workloads: string[]) => void;
  #process?: Deno.ChildProcess;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;
  #next = 1;
  #dead = false;

  constructor(
    readonly name: string,
    opts: HostPoolOptions,
    pauseMs: number,
    onLost: (why: string, workloads: string[]) => void,
  ) {
    this.#opts = opts;
    this.#onLost = onLost;
    this.#ready = (pauseMs > 0 ? new Promise((r) => setTimeout(r, pauseMs)) : Promise.resolve()).then(() => {
      if (this.#dead) return;
      try {
        this.#start();
      } catch (err) {
        this.#lose(undefined, `could not be started (${(err as Error).message})`);
      }
    });
  }

  #start(): void {
    const { command, args } = hostCommand(this.#opts.cacheDir, this.#opts.idleMs);
    const home = Deno.env.get("HOME");
    const denoDir = Deno.env.get("DENO_DIR");
    this.#process = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      cwd: this.#opts.cacheDir,
      // Guests get no host env anyway; the host process does not hold the server's secrets either.
      clearEnv: true,
      env: { NO_COLOR: "1", ...(home && { HOME: home }), ...(denoDir && { DENO_DIR: denoDir }) },
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#read(this.#process.stdout);
    this.#process.status.then((status) => {
      const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
      this.#lose(undefined, how);
    });
  }

  async #read(stdout: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const frame of readFrames(stdout)) {
        const message = frame as HostMessage;
        if ("log" in message) {
          this.#opts.log(...message.log);
          continue;
        }
        if ("chunk" in message) {
          this.#streams.get(message.chunk[0])?.push(message.chunk[1]);
          continue;
        }
        if ("end" in message) {
          const [id, failure] = message.end;
          const pending = this.#pending.get(id);
          this.#pending.delete(id);
          if (pending) clearTimeout(pending.timer);
          this.#streams.get(id)?.end(failure ?? undefined);
          this.#streams.delete(id);
          continue;
        }
        const pending = this.#pending.get(message.id);
        if (!pending) continue;
        if (message.ok && message.streamed) {
          // The call goes on (its deadline too) until the body's end arrives.
          const body = new IncomingBody();
          this.#streams.set(message.id, body);
          pending.lost = (_late, why) => body.end(why);
          pending.resolve({ ...(message.value as object), body: body.readable, finished: body.finished });
          continue;
        }
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new OrcaError(message.error.code, message.error.message, { hint: message.error.hint }));
      }
    } catch (err) {
      this.#lose(undefined, `sent a bad frame (${(err as Error).message})`);
    }
  }

  /**
   * Sends a call; settles with its answer, or with `lost` if the host is killed or dies first. `killAfterMs`: the
   * call's deadline and grace, past which the host is deemed stuck (none for loads and stats).
   */
  request(
    call: DistributiveOmit<HostCall, "id">,
    killAfterMs: number | undefined,
    lost: (late: boolean, why: string) => unknown,
  ) {
    return new Promise<unknown>((resolve, reject) => {
      if (this.#dead) {
        reject(new OrcaError("unavailable", "the guest host is gone"));
        return;
      }
      const id = this.#next++;
      const timer = killAfterMs === undefined ? undefined : setTimeout(
        () => this.#lose(id, `stopped answering (a call ran ${killAfterMs} ms) and was killed`),
        killAfterMs,
      );
      const settle = (late: boolean, why: string) => {
        try {
          resolve(lost(late, why));
        } catch (err) {
          reject(err);
        }
      };
      this.#pending.set(id, {
        workload: "workload" in call ? call.workload : "desc" in call ? call.desc.id : "",
        resolve,
        reject,
        lost: settle,
        timer,
      });
      if (call.op === "http" && call.req.body instanceof ReadableStream) {
        const body = call.req.body;
        this.send({ ...call, id, req: { ...call.req, body: null }, streamedBody: true });
        this.#sendBody(id, body);
      } else {
        this.send({ ...call, id } as HostCall);
      }
    });
  }

  /** Sends a streamed request body after its call, piece by piece (each waits for the pipe); then its end. */
  async #sendBody(id: number, body: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of body) {
        if (this.#dead) return;
        await this.send({ id, op: "body", chunk });
      }
    } catch {
      // The client went away mid-body: the guest reads an early end.
    }
    await this.send({ id, op: "body", chunk: null });
  }

  /** Writes a call (after the host started); a write to a dead host is dropped. */
  send(call: HostCall): Promise<void> {
    return this.#ready.then(() => this.#writer?.write(encodeFrame(call))).catch(() => {});
  }

  kill(): void {
    this.#lose(undefined, "was shut down");
  }

  #lose(lateId: number | undefined, why: string): void {
    if (this.#dead) return;
    this.#dead = true;
    try {
      this.#process?.kill("SIGKILL");
    } catch {
      // already gone
    }
    const workloads = new Set<string>();
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      workloads.add(pending.workload);
      pending.lost(id === lateId, `the ${this.name} ${why}`);
    }
    this.#pending.clear();
    this.#streams.clear();
    this.#onLost(why, [...workloads]);
  }
}

/** Most of a streamed body held for a slow client before the response is cut off. */
const MAX_BUFFERED_BODY = 32 * 1024 * 1024;

/** A streamed response body arriving from a host, chunk by chunk. */
class IncomingBody {
  readonly readable: ReadableStream<Uint8Array>;
  readonly finished: Promise<string | undefined>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #finish!: (failure: string | undefined) => void;
  #over = false;

  constructor() {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#over = true; // the client went away: what still comes is dropped
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: 1024 * 1024 }));
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  push(chunk: Uint8Array): void {
    if (this.#over) return;
    this.#controller.enqueue(chunk);
    if ((this.#controller.desiredSize ?? 0) < -MAX_BUFFERED_BODY) {
      this.#over = true;
      this.#controller.error(new Error("the client read too slowly: over 32 MiB of the response waited for it"));
    }
  }

  end(failure: string | undefined): void {
    if (!this.#over) {
      if (failure === undefined) this.#controller.close();
      else this.#controller.error(new Error(failure));
    }
    this.#over = true;
    this.#finish(failure);
  }
}

/** How to start a host: this same program in host mode (a compiled `orca`), or Deno on host.ts with few permissions. */
function hostCommand(cacheDir: string, idleMs: number): { command: string; args: string[] } {
  const exec = Deno.execPath();
  const hostArgs = ["--idle-ms", String(idleMs)];
  if (!/(^|[\\/])deno(\.exe)?$/.test(exec)) return { command: exec, args: ["__wasm-host", ...hostArgs] };
  return {
    command: exec,
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      // The compile cache, and the watchdog's worker (a Worker's module is read with the host's permissions).
      `--allow-read=${cacheDir},${new URL("./watchdog_worker.ts", import.meta.url).pathname}`,
      "--allow-net",
      new URL("./host.ts", import.meta.url).pathname,
      ...hostArgs,
    ],
  };
}
