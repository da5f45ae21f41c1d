/**
 * The core's in-memory log: the entries after the latest snapshot, and the
 * config in force. A config takes effect when its entry is appended, not when
 * it commits, and is rolled back when that entry is truncated away.
 */

import { decodeConfig } from "./config.ts";
import type { Config, Entry } from "./types.ts";

/** Where the log starts: index 0 (no snapshot) or a snapshot's index, its term and the config in force there. */
export interface LogBase {
  index: number;
  term: number;
  config: Config;
}

export class RaftLog {
  #base: LogBase;
  /** #entries[i] holds index #base.index + i + 1. */
  #entries: Entry[] = [];
  /** The config entries among #entries, oldest first. */
  #configs: { index: number; config: Config }[] = [];

  constructor(base: LogBase) {
    this.#base = base;
  }

  /** The entries held (those after the snapshot). */
  get entries(): readonly Entry[] {
    return this.#entries;
  }

  get snapshotIndex(): number {
    return this.#base.index;
  }

  get firstIndex(): number {
    return this.#base.index + 1;
  }

  get lastIndex(): number {
    return this.#base.index + this.#entries.length;
  }

  /** The term at `index`, or undefined when compacted away or past the end. */
  term(index: number): number | undefined {
    if (index === this.#base.index) return this.#base.term;
    return this.#entries[index - this.#base.index - 1]?.term;
  }

  entry(index: number): Entry | undefined {
    return index > this.#base.index ? this.#entries[index - this.#base.index - 1] : undefined;
  }

  /** Entries [from, to); `from` at least firstIndex. */
  slice(from: number, to: number): Entry[] {
    if (from < this.firstIndex) {
      throw new RangeError(`log: entry ${from} is compacted (first index ${this.firstIndex})`);
    }
    return this.#entries.slice(from - this.#base.index - 1, to - this.#base.index - 1);
  }

  /** The config in force: the latest config entry's, else the snapshot's (or the initial one). */
  get config(): Config {
    return this.#configs.at(-1)?.config ?? this.#base.config;
  }

  /** Index of the entry that set the config in force (the snapshot index, or 0, when none in the log did). */
  get configIndex(): number {
    return this.#configs.at(-1)?.index ?? this.#base.index;
  }

  /** The config in force at `index` (at least the snapshot index). */
  configAt(index: number): Config {
    for (let i = this.#configs.length - 1; i >= 0; i--) {
      if (this.#configs[i].index <= index) return this.#configs[i].config;
    }
    return this.#base.config;
  }

  /** Appends consecutive entries; any held at or after the first one's index go (and their configs with them). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first < this.firstIndex || first > this.lastIndex + 1) {
      throw new RangeError(`log: cannot append at ${first} (holds ${this.firstIndex}..${this.lastIndex})`);
    }
    this.truncateAfter(first - 1);
    for (const e of entries) {
      this.#entries.push(e);
      if (e.kind === "config") this.#configs.push({ index: e.index, config: decodeConfig(e.data) });
    }
  }

  /**
   * Takes an append from the leader: `entries` follow `prevIndex`, which must hold `prevTerm`. Only a conflict
   * truncates: a stale (reordered) append must not cut entries already acknowledged (unless `truncateStale`, a
   * test-only bug). Entries at or below the base are committed, so they match the leader's and are skipped (a
   * pipelined append may start below a snapshot). Returns the last index now known to match the leader's log and
   * the first index that changed, or undefined when `prevIndex` does not match.
   */
  merge(
    prevIndex: number,
    prevTerm: number,
    entries: readonly Entry[],
    truncateStale = false,
  ): { verified: number; changedFrom?: number } | undefined {
    const base = this.#base;
    if (prevIndex < base.index) {
      entries = entries.slice(base.index - prevIndex);
      [prevIndex, prevTerm] = [base.index, base.term];
    }
    if (prevIndex > this.lastIndex || this.term(prevIndex) !== prevTerm) return undefined;
    const verified = prevIndex + entries.length;
    const conflict = entries.findIndex((e) => this.term(e.index) !== e.term);
    if (conflict >= 0) {
      this.append(entries.slice(conflict));
      return { verified, changedFrom: entries[conflict].index };
    }
    if (!truncateStale || verified >= this.lastIndex) return { verified };
    this.truncateAfter(verified);
    return { verified, changedFrom: verified + 1 };
  }

  /** Drops every entry after `index`. */
  truncateAfter(index: number): void {
    if (index >= this.lastIndex) return;
    this.#entries.length = Math.max(0, index - this.#base.index);
    while ((this.#configs.at(-1)?.index ?? 0) > index) this.#configs.pop();
  }

  /** Drops the entries up to `index` (held); the config in force there becomes the base. */
  compact(index: number): void {
    const term = this.term(index);
    if (index <= this.#base.index || term === undefined) {
      throw new RangeError(`log: cannot compact to ${index} (holds ${this.firstIndex}..${this.lastIndex})`);
    }
    const dropped = index - this.#base.index;
    this.#base = { index, term, config: this.configAt(index) };
    this.#entries = this.#entries.slice(dropped);
    this.#configs = this.#configs.filter((c) => c.index > index);
  }

  /** Replaces everything with a snapshot's base. */
  reset(base: LogBase): void {
    this.#base = base;
    this.#entries = [];
    this.#configs = [];
  }
}
