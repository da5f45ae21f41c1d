/**
 * The simulator's model of a node's disk: writes land in a page cache and are
 * durable only once synced. A crash keeps what was synced plus, possibly, a
 * prefix of the unsynced writes (a write-ahead log is written in order), and
 * the last entry of that prefix may be torn: recovery finds it half-written
 * (its checksum fails) and drops it.
 */

import type { Entry, HardState, Snapshot } from "./types.ts";

/** What is on the platter: the hard state, the latest snapshot, and the log entries after it. */
export interface DiskState {
  hardState: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
}

export type DiskWrite =
  | { kind: "snapshot"; snapshot: Snapshot }
  | { kind: "entries"; entries: Entry[] }
  | { kind: "hard-state"; hardState: HardState };

export class SimDisk {
  /** Everything synced: what survives any crash. */
  synced: DiskState;
  #pending: DiskWrite[] = [];

  constructor(state: DiskState = { hardState: { term: 0, commit: 0 }, entries: [] }) {
    this.synced = state;
  }

  write(w: DiskWrite): void {
    this.#pending.push(w);
  }

  get dirty(): boolean {
    return this.#pending.length > 0;
  }

  /** fsync: the writes so far become durable. */
  sync(): void {
    for (const w of this.#pending) this.synced = applyWrite(this.synced, w);
    this.#pending = [];
  }

  /**
   * The power goes: the unsynced writes are lost, but a prefix of them (`rand` picks) may have reached the disk.
   * Says how many writes (entries counted one by one) were lost, and whether the last one kept was torn.
   */
  crash(rand: () => number): { lost: number; torn: boolean } {
    const units = this.#pending.flatMap((w): DiskWrite[] =>
      w.kind === "entries" ? w.entries.map((e) => ({ kind: "entries", entries: [e] })) : [w]
    );
    const kept = Math.floor(rand() * (units.length + 1));
    // The last write to reach the disk may be torn half-way: recovery drops a torn entry (it never was acknowledged).
    const torn = kept > 0 && units[kept - 1].kind === "entries" && rand() < 0.5;
    let state = this.synced;
    for (const w of units.slice(0, torn ? kept - 1 : kept)) state = applyWrite(state, w);
    this.synced = state;
    this.#pending = [];
    return { lost: units.length - kept + (torn ? 1 : 0), torn };
  }

  /** The synced term at `index` (undefined: not on disk). */
  term(index: number): number | undefined {
    const s = this.synced;
    const base = s.snapshot?.index ?? 0;
    if (index === base) return s.snapshot?.term ?? 0;
    return s.entries[index - base - 1]?.term;
  }

  get lastIndex(): number {
    return (this.synced.snapshot?.index ?? 0) + this.synced.entries.length;
  }
}

/** One write, with the LogStore contract's meaning (raft/types.ts). */
function applyWrite(s: DiskState, w: DiskWrite): DiskState {
  const base = s.snapshot?.index ?? 0;
  switch (w.kind) {
    case "hard-state":
      return { ...s, hardState: { ...w.hardState } };
    case "entries": {
      const first = w.entries[0].index;
      if (first <= base || first > base + s.entries.length + 1) throw new Error(`disk: append at ${first} off the log`);
      return { ...s, entries: [...s.entries.slice(0, first - base - 1), ...w.entries] };
    }
    case "snapshot": {
      const snap = w.snapshot;
      if (snap.index <= base && s.snapshot) return s;
      const at = snap.index - base - 1;
      const continues = at >= 0 && s.entries[at]?.term === snap.term;
      return { ...s, snapshot: snap, entries: continues ? s.entries.slice(at + 1) : [] };
    }
  }
}
