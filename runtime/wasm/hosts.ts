/**
 * Guest host processes (host.ts), supervised: one per core by default, so
 * guests use every core and a guest that stops its host from answering costs
 * only that host. Each call goes to the host with the fewest calls in flight
 * (one that already has the workload loaded on a tie). A call that outlives
 * its deadline by `graceMs` means the in-guest interrupt did not fire (a
 * guest without deadline checks, a hung host): the host is killed with
 * SIGKILL, its calls whose guests began fail (504 for the late one, 503 for
 * the others; the calls it had not handed to a guest yet run on another
 * host), the incident is reported, and a fresh host takes its place.
 */

import { OrcaError } from "../../errors.ts";
import type { ExecResult, JobInput } from "../types.ts";
import { HTTP_TIMEOUT_MS, JOB_TIMEOUT_MS, wireError } from "./backend.ts";
import type { GuestBackend, JobOutcome, WireRequest, WireResponse, WorkloadDesc, WorkloadStats } from "./backend.ts";
import type { HostCall } from "./host.ts";
import { type DistributiveOmit, HostLost, HostProcess, type HostProcessOptions } from "./host_process.ts";

export interface HostPoolOptions extends HostProcessOptions {
  /** How many host processes. */
  size: number;
  /** A host was killed or died: the workloads whose calls it failed, and why. */
  onIncident(workloads: string[], why: string): void;
  /** How long past a call's deadline before its host is deemed stuck (default 2 s). */
  graceMs?: number;
}

const STATS_WAIT_MS = 1000;
/** How many times a call lost with its host before its guest began is sent to another host. */
const RETRIES = 2;
/** A host that dies sooner than this after starting is replaced only after this long (no crash loop). */
const RESPAWN_PAUSE_MS = 1000;

export class HostPool implements GuestBackend {
  readonly #opts: HostPoolOptions;
  readonly #hosts: HostProcess[] = [];
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
    } catch (err) {
      if (!(err instanceof HostLost)) throw err;
      throw new OrcaError("unavailable", `cannot load ${desc.project}/${desc.name}: ${err.why}`);
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

  async stats(id: string): Promise<WorkloadStats> {
    const sum: WorkloadStats = { instances: 0, memoryBytes: 0 };
    const answers = this.#hosts.filter((h) => h.loaded.has(id)).map((host) => {
      const asked = host.request({ op: "stats", workload: id }, undefined);
      // A host busy with a long call answers late: count what the others say rather than wait.
      const late = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STATS_WAIT_MS));
      return Promise.race([asked.catch(() => undefined), late]) as Promise<typeof sum | undefined>;
    });
    for (const answer of await Promise.all(answers)) {
      sum.instances += answer?.instances ?? 0;
      sum.memoryBytes += answer?.memoryBytes ?? 0;
      sum.made = (sum.made ?? 0) + (answer?.made ?? 0);
      if (answer?.notReused) sum.notReused ??= answer.notReused;
      if (answer?.notReset) sum.notReset ??= answer.notReset;
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

  /**
   * Sends a call to the least busy host. A host lost before the call's guest
   * began (while loading the workload, waiting for an instance, or before its
   * request body was read) costs the call nothing: it goes to another host,
   * or the new one, up to RETRIES times. One whose guest began settles with
   * `lost`: its effects may have happened.
   */
  async #call<T>(
    id: string,
    call: DistributiveOmit<HostCall, "id">,
    defaultDeadlineMs: number,
    lost: (late: boolean, why: string) => T,
  ): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const desc = this.#descs.get(id);
      if (!desc) throw new OrcaError("not_found", `workload ${id} is not loaded`);
      const host = this.#pick(id);
      host.inFlight++;
      try {
        await this.#ensure(host, desc);
        const deadline = desc.timeoutMs ?? defaultDeadlineMs;
        return await host.request(call, deadline + (this.#opts.graceMs ?? 2000)) as T;
      } catch (err) {
        if (!(err instanceof HostLost)) throw err;
        if (err.began || err.late || attempt >= RETRIES || this.#closed) return lost(err.late, err.why);
      } finally {
        host.inFlight--;
      }
    }
  }

  #ensure(host: HostProcess, desc: WorkloadDesc): Promise<void> {
    let loading = host.loaded.get(desc.id);
    if (!loading) {
      // No deadline of its own: a load waits behind the host's calls, whose deadlines kill it if it is stuck.
      loading = host.request({ op: "load", desc }, undefined) as Promise<void>;
      host.loaded.set(desc.id, loading);
      loading.catch(() => host.loaded.delete(desc.id));
    }
    return loading;
  }

  /** The host with the fewest calls in flight; on a tie, one that has the workload, then the first. */
  #pick(id: string): HostProcess {
    if (this.#closed) throw new OrcaError("unavailable", "the Wasm runtime is shut down");
    let best = this.#hosts[0];
    for (const host of this.#hosts) {
      const fewer = host.inFlight < best.inFlight;
      const tieButLoaded = host.inFlight === best.inFlight && host.loaded.has(id) && !best.loaded.has(id);
      if (fewer || tieButLoaded) best = host;
    }
    return best;
  }

  #spawn(slot: number, pauseMs: number): HostProcess {
    const host = new HostProcess(`guest host ${slot + 1}`, this.#opts, pauseMs, (why, workloads) => {
      if (this.#closed) return;
      this.restarts++;
      this.#opts.onIncident(workloads, `guest host ${slot + 1} ${why}; a new one took its place`);
      const lived = performance.now() - host.startedAt;
      this.#hosts[slot] = this.#spawn(slot, lived < RESPAWN_PAUSE_MS ? RESPAWN_PAUSE_MS : 0);
    });
    return host;
  }
}
