/**
 * New versions started ahead of the deploy that will run them: compiled,
 * instantiated and warm before the deploy commits, on every server they are
 * placed on, so that a deploy that cannot start everywhere commits nothing,
 * and the swap after it commits waits for nothing. The convergence after the
 * commit takes them (by workload id); one never taken is removed after a
 * while (a deploy that failed elsewhere).
 */

import type { WorkloadHandle } from "../runtime/mod.ts";
import { type LocalService, workloadId, type Workloads } from "./workloads.ts";

/** How long a version started ahead waits for its deploy to commit. */
const TTL_MS = 60_000;

export class Warm {
  /** Started ahead, by workload id. */
  readonly handles = new Map<string, WorkloadHandle>();
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
  async start(services: LocalService[]): Promise<() => Promise<void>> {
    const started: WorkloadHandle[] = [];
    const undo = async () => {
      for (const h of started) {
        if (this.handles.get(h.id) !== h) continue;
        this.handles.delete(h.id);
        await this.#workloads.runtime(h).remove(h);
      }
    };
    try {
      for (const s of services) {
        const id = workloadId(s);
        if (this.handles.has(id)) continue;
        const handle = await this.#workloads.start(s);
        started.push(handle);
        this.handles.set(id, handle);
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
    this.handles.delete(handle.id);
    this.#log(`${handle.id}: started for a deploy that did not commit; removed`);
    this.#workloads.runtime(handle).remove(handle).catch(() => {});
  }
}
