/**
 * What the core owes its driver: a snapshot to load, entries and hard state
 * to persist, messages to send, entries to apply, reads to answer. `ready`
 * hands it over; `advance` settles what the driver did with it, even when the
 * core has moved on since (appended, truncated, installed a snapshot).
 */

import type { RaftLog } from "./log.ts";
import type { Message, Ready } from "./messages.ts";
import type { HardState, Snapshot } from "./types.ts";

export class Outbox {
  messages: Message[] = [];
  reads: { ctx: string; index: number }[] = [];
  /** The hard state changed since it was last stored. */
  hardDirty = false;
  /** Index the driver has applied through. */
  applied = 0;
  /** An installed snapshot the driver has not been handed yet. */
  snapshot?: Snapshot;
  /** The lowest index not yet stored (Infinity: all are). */
  #unstableFrom = Infinity;

  /** Entries from `first` on changed. */
  appended(first: number): void {
    this.#unstableFrom = Math.min(this.#unstableFrom, first);
    this.#retract(first);
  }

  /** A snapshot replaced the log and the state machine. */
  installed(snapshot: Snapshot): void {
    this.#retract(snapshot.index + 1);
    this.snapshot = snapshot;
    this.applied = snapshot.index;
    this.#unstableFrom = Infinity;
    this.hardDirty = true;
  }

  /**
   * The entries from `first` on were replaced: an acknowledgement of them not handed over yet would go out once
   * they are gone from the disk too. Dropped (as if lost on the way), since it would no longer be true.
   */
  #retract(first: number): void {
    this.messages = this.messages.filter((m) => m.type !== "append-response" || !m.success || m.index < first);
  }

  /** The last index stored. */
  stored(log: RaftLog): number {
    return Math.min(this.#unstableFrom - 1, log.lastIndex);
  }

  has(log: RaftLog, commit: number): boolean {
    return this.snapshot !== undefined || this.messages.length > 0 || this.reads.length > 0 || this.hardDirty ||
      this.#unstableFrom <= log.lastIndex || commit > this.applied;
  }

  ready(log: RaftLog, hardState: HardState, commit: number): Ready {
    const from = Math.max(this.#unstableFrom, log.firstIndex);
    return {
      ...(this.snapshot && { snapshot: this.snapshot }),
      entries: from <= log.lastIndex ? log.slice(from, log.lastIndex + 1) : [],
      ...(this.hardDirty && { hardState }),
      messages: [...this.messages],
      committed: log.slice(this.applied + 1, commit + 1),
      reads: [...this.reads],
    };
  }

  advance(ready: Ready, log: RaftLog, hardState: HardState): void {
    this.messages = this.messages.slice(ready.messages.length);
    this.reads = this.reads.slice(ready.reads.length);
    const last = ready.entries.at(-1);
    // Unless a conflict truncated the log at or below it since, everything up to the last entry given is stored.
    if (last && log.term(last.index) === last.term) this.#unstableFrom = last.index + 1;
    const h = ready.hardState;
    if (h && h.term === hardState.term && h.vote === hardState.vote && h.commit === hardState.commit) {
      this.hardDirty = false;
    }
    this.applied = Math.max(this.applied, ready.committed.at(-1)?.index ?? 0);
    if (ready.snapshot === this.snapshot) this.snapshot = undefined;
  }
}
