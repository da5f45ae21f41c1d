/**
 * Readiness and liveness probes of the workloads that run here: per workload
 * and kind, a loop that probes every replica the watchdog knows of (none that
 * is restarting) each `interval_secs`, all at once and each under its own
 * `timeout_secs`, so a probe never stalls another or the server. After
 * `failure_threshold` failures in a row a replica is reported not ready (or
 * not alive); a ready one is reported at its first pass.
 */

import type { Probe } from "../config/mod.ts";
import type { Healing, WorkloadHandle } from "../runtime/mod.ts";

export interface ProbeTarget {
  handle: WorkloadHandle;
  replica: number;
}

export interface ProbeLoopsOptions {
  healing(handle: WorkloadHandle): Healing | undefined;
  /** The replicas of `handle` to probe now. */
  replicas(handle: WorkloadHandle): ProbeTarget[];
  /** A readiness verdict: each pass, and the failure that reached the threshold. */
  onReadiness(target: ProbeTarget, ok: boolean, why?: string): void;
  /** Liveness failed `failure_threshold` times in a row. */
  onLiveness(target: ProbeTarget, why: string): void;
}

type Kind = "readiness" | "liveness";

interface Loop {
  probe: Probe;
  timer?: ReturnType<typeof setTimeout>;
  /** Failures in a row, per replica. */
  failures: Map<number, number>;
}

export class ProbeLoops {
  readonly #opts: ProbeLoopsOptions;
  /** By workload id, then kind. */
  readonly #loops = new Map<string, Map<Kind, Loop>>();
  #stopped = false;

  constructor(opts: ProbeLoopsOptions) {
    this.#opts = opts;
  }

  /** Starts the loops `handle` needs (once: a loop already running goes on). */
  ensure(handle: WorkloadHandle, probes: Partial<Record<Kind, Probe>>): void {
    if (this.#stopped) return;
    let loops = this.#loops.get(handle.id);
    if (!loops) this.#loops.set(handle.id, loops = new Map());
    for (const kind of ["readiness", "liveness"] as const) {
      const probe = probes[kind];
      if (!probe || loops.has(kind)) continue;
      const loop: Loop = { probe, failures: new Map() };
      loops.set(kind, loop);
      // Readiness was checked before the replica got traffic: the next probe is one interval on. Liveness waits
      // out the initial delay first.
      const first = kind === "liveness" ? probe.initial_delay_secs + probe.interval_secs : probe.interval_secs;
      this.#schedule(handle, kind, loop, first * 1000);
    }
  }

  /** Stops the loops of workloads not in `ids`. */
  keep(ids: ReadonlySet<string>): void {
    for (const [id, loops] of this.#loops) {
      if (ids.has(id)) continue;
      for (const loop of loops.values()) clearTimeout(loop.timer);
      this.#loops.delete(id);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.keep(new Set());
  }

  #schedule(handle: WorkloadHandle, kind: Kind, loop: Loop, ms: number): void {
    loop.timer = setTimeout(async () => {
      await this.#round(handle, kind, loop);
      if (!this.#stopped && this.#loops.get(handle.id)?.get(kind) === loop) {
        this.#schedule(handle, kind, loop, loop.probe.interval_secs * 1000);
      }
    }, ms);
  }

  async #round(handle: WorkloadHandle, kind: Kind, loop: Loop): Promise<void> {
    const healing = this.#opts.healing(handle);
    if (!healing) return;
    const { path, timeout_secs, failure_threshold } = loop.probe;
    await Promise.all(
      this.#opts.replicas(handle).map(async (target) => {
        const why = await healing.probe(handle, target.replica, path, timeout_secs * 1000).catch((err) =>
          `GET ${path}: ${(err as Error).message}`
        );
        if (why === undefined) {
          loop.failures.set(target.replica, 0);
          if (kind === "readiness") this.#opts.onReadiness(target, true);
          return;
        }
        const failures = (loop.failures.get(target.replica) ?? 0) + 1;
        loop.failures.set(target.replica, failures);
        if (failures < failure_threshold) return;
        if (kind === "readiness") this.#opts.onReadiness(target, false, `${why} (${failures} times in a row)`);
        else {
          loop.failures.set(target.replica, 0);
          this.#opts.onLiveness(target, `${why} (${failures} times in a row)`);
        }
      }),
    );
  }
}
