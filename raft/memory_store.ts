/**
 * The in-memory LogStore: for the simulator and for tests of the core, and
 * the copy WorkerLogStore (raft/worker_store.ts) answers reads from.
 */

import type { Entry, HardState, LogStore, Snapshot, StoreWrite } from "./types.ts";

export class MemoryLogStore implements LogStore {
  #hard: HardState = { term: 0, commit: 0 };
  /** Entries from #first on. */
  #log: Entry[] = [];
  #first = 1;
  /** Term of the entry just before #first (the compaction point). */
  #snapshotTerm = 0;
  #snapshot?: Snapshot;

  /** A copy of what `store` holds now. */
  static copy(store: LogStore): MemoryLogStore {
    const m = new MemoryLogStore();
    m.#hard = store.hardState();
    m.#first = store.firstIndex();
    m.#snapshotTerm = store.term(m.#first - 1) ?? 0;
    m.#snapshot = store.snapshot();
    const last = store.lastIndex();
    m.#log = last >= m.#first ? store.entries(m.#first, last + 1) : [];
    return m;
  }

  hardState(): HardState {
    return { ...this.#hard };
  }

  setHardState(state: HardState): Promise<void> {
    this.#hard = { ...state };
    return Promise.resolve();
  }

  firstIndex(): number {
    return this.#first;
  }

  lastIndex(): number {
    return this.#first + this.#log.length - 1;
  }

  term(index: number): number | undefined {
    if (index === this.#first - 1) return this.#snapshotTerm;
    return this.#log[index - this.#first]?.term;
  }

  entries(from: number, to: number, maxBytes = Infinity): Entry[] {
    checkRange(from, to, this.#first, this.lastIndex());
    return limitBytes(this.#log.slice(from - this.#first, to - this.#first), maxBytes);
  }

  append(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    checkAppend(entries, this.#first, this.lastIndex());
    this.#log.length = entries[0].index - this.#first;
    this.#log.push(...entries.map((e) => ({ ...e })));
    return Promise.resolve();
  }

  compact(upTo: number): Promise<void> {
    if (upTo < this.#first) return Promise.resolve();
    if (upTo > this.lastIndex()) throw new RangeError(`cannot compact past the last index ${this.lastIndex()}`);
    this.#snapshotTerm = this.term(upTo)!;
    this.#log = this.#log.slice(upTo + 1 - this.#first);
    this.#first = upTo + 1;
    return Promise.resolve();
  }

  snapshot(): Snapshot | undefined {
    return this.#snapshot && copySnapshot(this.#snapshot);
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    if (this.#snapshot && snapshot.index <= this.#snapshot.index) return Promise.resolve();
    const continues = snapshot.index >= this.#first - 1 && this.term(snapshot.index) === snapshot.term;
    this.#log = continues ? this.#log.slice(snapshot.index + 1 - this.#first) : [];
    this.#first = snapshot.index + 1;
    this.#snapshotTerm = snapshot.term;
    this.#snapshot = copySnapshot(snapshot);
    return Promise.resolve();
  }

  async persist(write: StoreWrite): Promise<void> {
    if (write.snapshot) await this.saveSnapshot(write.snapshot);
    await this.append(write.entries);
    if (write.hardState) await this.setHardState(write.hardState);
  }
}

export function copySnapshot(s: Snapshot): Snapshot {
  const c = s.config;
  const config = { voters: [...c.voters], ...(c.outgoing && { outgoing: [...c.outgoing] }), learners: [...c.learners] };
  return { index: s.index, term: s.term, config, data: s.data.slice() };
}

export function checkRange(from: number, to: number, first: number, last: number): void {
  if (from < first) throw new RangeError(`entries from ${from}: compacted (first index ${first})`);
  if (to > last + 1 || from > to) throw new RangeError(`entries [${from}, ${to}): past the last index ${last}`);
}

export function checkAppend(entries: readonly Entry[], first: number, last: number): void {
  const start = entries[0].index;
  if (start > last + 1) throw new RangeError(`append at ${start} leaves a gap after ${last}`);
  if (start < first) throw new RangeError(`append at ${start} is below the first index ${first}`);
  entries.forEach((e, i) => {
    if (e.index !== start + i) throw new RangeError(`append: entries are not consecutive at ${e.index}`);
  });
}

/** Entries up to `maxBytes` of data, but always at least one. */
export function limitBytes(entries: Entry[], maxBytes: number): Entry[] {
  let size = 0;
  for (let i = 0; i < entries.length; i++) {
    size += entries[i].data.length;
    if (size > maxBytes && i > 0) return entries.slice(0, i);
  }
  return entries;
}
