/**
 * The simulator's network: messages wait in a pool and are delivered in a
 * random order (reordering), some only after a long delay; links can be cut
 * both ways (a split), one way (a node that can send but not be heard, or the
 * reverse), or all but through one node (a bridge that sees both sides).
 */

import type { Message } from "./messages.ts";

export type PartitionKind = "split" | "one-way" | "bridge";

export class SimNetwork {
  /** Deliverable now; delivery picks among them at random. */
  queue: Message[] = [];
  #delayed: { m: Message; at: number }[] = [];
  /** Directed links that lose everything: `${from}>${to}`. */
  readonly #cut = new Set<string>();
  /** A symmetric split set by hand (tests): messages between this side and the rest are lost. */
  side?: Set<string>;
  /** The partition in force, for the record. */
  partition?: PartitionKind;

  send(m: Message, now: number, delay = 0): void {
    if (delay > 0) this.#delayed.push({ m, at: now + delay });
    else this.queue.push(m);
  }

  /** Moves the delayed messages that are due into the queue. */
  release(now: number): void {
    if (this.#delayed.length === 0) return;
    const due = this.#delayed.filter((d) => d.at <= now);
    if (due.length === 0) return;
    this.#delayed = this.#delayed.filter((d) => d.at > now);
    this.queue.push(...due.map((d) => d.m));
  }

  /** Takes message `i` out of the queue. */
  take(i: number): Message {
    return this.queue.splice(i, 1)[0];
  }

  blocked(from: string, to: string): boolean {
    if (this.side !== undefined && this.side.has(from) !== this.side.has(to)) return true;
    return this.#cut.size > 0 && this.#cut.has(`${from}>${to}`);
  }

  /** Cuts links among `ids` the way `kind` says; `rand` picks the sides. */
  split(kind: PartitionKind, ids: readonly string[], rand: () => number): void {
    this.#cut.clear();
    this.partition = kind;
    const pick = (list: readonly string[]) => list[Math.floor(rand() * list.length)];
    const bridge = kind === "bridge" ? pick(ids) : undefined;
    const rest = ids.filter((id) => id !== bridge);
    const a = new Set(rest.filter(() => rand() < 0.5));
    for (const from of rest) {
      for (const to of rest) {
        if (a.has(from) === a.has(to)) continue;
        // one-way: side a cannot be heard by the rest, but hears it.
        if (kind !== "one-way" || a.has(from)) this.#cut.add(`${from}>${to}`);
      }
    }
  }

  /** Every link works again. */
  reconnect(): void {
    this.#cut.clear();
    this.side = undefined;
    this.partition = undefined;
  }

  /** Every link works again and every delayed message is due. */
  heal(): void {
    this.reconnect();
    this.queue.push(...this.#delayed.map((d) => d.m));
    this.#delayed = [];
  }

  /** A node went down: what was on its way to it is lost. */
  dropTo(id: string): void {
    this.queue = this.queue.filter((m) => m.to !== id);
    this.#delayed = this.#delayed.filter((d) => d.m.to !== id);
  }

  /** Takes out every queued message that `match` picks, oldest first (scripted schedules). */
  extract(match: (m: Message) => boolean): Message[] {
    const picked = this.queue.filter(match);
    this.queue = this.queue.filter((m) => !match(m));
    return picked;
  }
}
