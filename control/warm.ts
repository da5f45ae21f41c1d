/**
 * New versions started ahead of the deploy that will run them: compiled,
 * instantiated and warm before the deploy commits, on every server they are
 * placed on, so that a deploy that cannot start everywhere commits nothing,
 * and the swap after it commits waits for nothing. The convergence after the
 * commit takes them (by workload id); one never taken is removed after a
 * while (a deploy that failed elsewhere).
 */

import type { WorkloadHandle } from "../runtime/mod.ts";
import { sameSpec } from "./deploy_request.ts";
import { type LocalService, workloadId, type Workloads } from "./workloads.ts";

/** How long a version started ahead waits for its deploy to commit. */
const TTL_MS = 60_000;

export class Warm {
  /** Started ahead, by workload id. */
  readonly handles = new Map<string, WorkloadHandle>();
  /** What each was started as: a deploy that failed and was sent again may reuse the version with another spec. */
  readonly #started = new Map<string, LocalService>();
  /** Starts under way (a prepare the leader gave up waiting for may still be starting when the deploy commits). */
  readonly #starting = new Set<Promise<unknown>>();
  readonly #workloads: Workloads;
  readonly #log: (line: string) => void;

  constructor(workloads: Workloads, log: (line: string) => void) {
    this.#workloads = workloads;
    this.#log = log;
  }

  /**
   * Starts each of `services` (one already warm is kept); if one fails, what this call started is removed and the
   * error thrown. Resolves with the undo: it removes what this call started and nobody took yet.
   */
  start(services: LocalService[]): Promise<() => Promise<void>> {
    const run = this.#start(services);
    const tracked = run.catch(() => {});
    this.#starting.add(tracked);
    tracked.finally(() => this.#starting.delete(tracked));
    return run;
  }

  /** Resolves once no start is under way. */
  async idle(): Promise<void> {
    while (this.#starting.size > 0) await Promise.allSettled([...this.#starting]);
  }

  /** Removes warm versions of `desired` that were started with another spec: the convergence starts them anew. */
  async evictStale(desired: LocalService[]): Promise<void> {
    for (const id of this.#started.keys()) if (!this.handles.has(id)) this.#started.delete(id); // taken since
    for (const s of desired) {
      const id = workloadId(s);
      const was = this.#started.get(id);
      if (was && !sameSpec(was.spec, s.spec)) await this.#remove(id);
    }
  }

  async #start(services: LocalService[]): Promise<() => Promise<void>> {
    const started: WorkloadHandle[] = [];
    const undo = async () => {
      for (const h of started) if (this.handles.get(h.id) === h) await this.#remove(h.id);
    };
    try {
      for (const s of services) {
        const id = workloadId(s);
        const was = this.#started.get(id);
        if (this.handles.has(id) && was && sameSpec(was.spec, s.spec)) continue;
        if (this.handles.has(id)) await this.#remove(id);
        const handle = await this.#workloads.start(s);
        started.push(handle);
        this.handles.set(id, handle);
        this.#started.set(id, s);
        setTimeout(() => this.#expire(handle), TTL_MS);
      }
    } catch (err) {
      await undo();
      throw err;
    }
    return undo;
  }

  #expire(handle: WorkloadHandle): void {
    if (this.handles.get(handle.id) !== handle) return;
    this.#log(`${handle.id}: started for a deploy that did not commit; removed`);
    this.#remove(handle.id).catch(() => {});
  }

  async #remove(id: string): Promise<void> {
    const handle = this.handles.get(id);
    this.handles.delete(id);
    this.#started.delete(id);
    if (handle) await this.#workloads.runtime(handle).remove(handle);
  }
}
