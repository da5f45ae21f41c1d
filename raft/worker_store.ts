/**
 * The SQLite LogStore with its writes on a worker thread: the same database
 * (raft/sqlite_store.ts: WAL, synchronous=FULL), but an fsync no longer stops
 * the node's event loop, so while one write is on its way the node goes on
 * receiving proposals and acknowledgements (and the next write takes them all).
 * Reads are answered from a copy in memory, loaded at open and updated as
 * writes are issued; a write is durable when its promise resolves.
 *
 * Once a write fails, every later call fails too: the driver must stop.
 */

import { copySnapshot, MemoryLogStore } from "./memory_store.ts";
import type { WorkerReply, WorkerRequest } from "./sqlite_worker.ts";
import { SqliteLogStore } from "./sqlite_store.ts";
import type { Entry, HardState, LogStore, Snapshot, StoreWrite } from "./types.ts";

type Request = WorkerRequest extends infer R ? R extends { id: number } ? Omit<R, "id"> : never : never;

/** A write the worker could not do. */
export class StoreError extends Error {
  readonly code = "raft_store";
}

export class WorkerLogStore implements LogStore {
  readonly #copy: MemoryLogStore;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  #next = 0;
  #failed?: Error;

  /** Opens (or creates) the database at `path`; its content is read here, once, before the worker takes over. */
  constructor(path: string) {
    const disk = new SqliteLogStore(path);
    try {
      this.#copy = MemoryLogStore.copy(disk);
    } finally {
      disk.close();
    }
    this.#worker = new Worker(new URL("./sqlite_worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const p = this.#pending.get(e.data.id);
      if (e.data.error !== undefined) return this.#fail(new StoreError(`SQLite write failed: ${e.data.error}`));
      this.#pending.delete(e.data.id);
      p?.resolve();
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#fail(new StoreError(`SQLite worker failed: ${e.message}`));
    };
    this.#worker.postMessage({ path });
  }

  hardState(): HardState {
    return this.#copy.hardState();
  }

  firstIndex(): number {
    return this.#copy.firstIndex();
  }

  lastIndex(): number {
    return this.#copy.lastIndex();
  }

  term(index: number): number | undefined {
    return this.#copy.term(index);
  }

  entries(from: number, to: number, maxBytes?: number): Entry[] {
    return this.#copy.entries(from, to, maxBytes);
  }

  snapshot(): Snapshot | undefined {
    return this.#copy.snapshot();
  }

  // Each write is checked and applied to the copy first (a refused one throws before reaching the disk).

  async setHardState(state: HardState): Promise<void> {
    await this.persist({ entries: [], hardState: state });
  }

  async append(entries: readonly Entry[]): Promise<void> {
    await this.persist({ entries });
  }

  async compact(upTo: number): Promise<void> {
    await this.#copy.compact(upTo);
    await this.#request({ op: "compact", upTo });
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.#copy.saveSnapshot(snapshot);
    await this.#request({ op: "saveSnapshot", snapshot: copySnapshot(snapshot) });
  }

  async persist(write: StoreWrite): Promise<void> {
    await this.#copy.persist(write);
    await this.#request({ op: "persist", write });
  }

  /** Closes the database once the writes sent before are done, and ends the worker. */
  async close(): Promise<void> {
    try {
      if (!this.#failed) await this.#request({ op: "close" });
    } finally {
      this.#worker.terminate();
      this.#fail(new StoreError("store closed"));
    }
  }

  #request(req: Request): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, ...req });
    });
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const p of this.#pending.values()) p.reject(this.#failed);
    this.#pending.clear();
  }
}
