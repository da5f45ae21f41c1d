/**
 * Group commit for queue publishes. A topic has at most one proposal on its
 * way through the log; publishes to it that arrive meanwhile wait and then go
 * together, as one command, and each publisher gets its own messages' ids
 * back. Under load that is one entry (one stored row, one message to each
 * peer, one apply, one fsync) for many publishes. The batch goes in the
 * log's next turn (raft/driver.ts `beforeTurn`), where a lone proposal would
 * have waited too. Waiting behind a proposal under way costs no latency a log could have
 * saved: its entries commit in order anyway. A topic's messages keep the
 * order their publishes arrived in.
 *
 * Publishers that come one at a time (a script, a lone producer: proposal
 * after proposal carries one publish) do not wait for the next turn of the
 * event loop: nothing is coming to join them, and the write starts in this
 * turn's microtasks. Such writes run one after another, so publishers that
 * came together again would never be seen gathering: every eighth goes to the
 * next turn all the same, and batching resumes as soon as one gathers more.
 */

/** The most bytes of bodies one batch carries (a bigger publish still goes alone, as one command). */
const MAX_BATCH_BYTES = 1 << 20;
/** The most publishes one batch carries. */
const MAX_BATCH_PUBLISHES = 512;
/** Proposals in a row with one publish each, after which publishers are taken to come one at a time. */
const SINGLES = 4;
/** While they do, one publish in this many still waits for a turn (to see whether others gather again). */
const PROBE_EVERY = 8;

interface Waiter {
  count: number;
  resolve(ids: number[]): void;
  reject(err: unknown): void;
}

interface Batch {
  bodies: Uint8Array[];
  bytes: number;
  waiters: Waiter[];
}

/** The turns of whatever writes the log: gather just before it writes, and ask it for a turn. */
export interface Turns {
  beforeWrite(gather: () => void): void;
  /** A turn soon; `now`: in this turn's microtasks. */
  wake(now?: boolean): void;
}

export class PublishBatcher {
  readonly #propose: (topic: string, bodies: Uint8Array[]) => Promise<number[]>;
  /** Batches filling, by topic: proposed at the next wake, or once the topic's proposal under way is done. */
  readonly #filling = new Map<string, Batch[]>();
  /** Topics with a proposal under way. */
  readonly #inFlight = new Set<string>();
  readonly #turns: Turns;
  #woken = false;
  #closed = false;
  /** Proposals in a row that carried one publish each. */
  #singles = 0;
  /** Publishes woken for in this turn's microtasks (every PROBE_EVERY-th waits for a turn instead). */
  #quick = 0;

  constructor(propose: (topic: string, bodies: Uint8Array[]) => Promise<number[]>, turns: Turns) {
    this.#propose = propose;
    this.#turns = turns;
    turns.beforeWrite(() => {
      this.#woken = false;
      for (const topic of [...this.#filling.keys()]) if (!this.#inFlight.has(topic)) this.#send(topic);
    });
  }

  /** Publishes `bodies` to `topic` with whatever else is published to it meanwhile; resolves with their ids. */
  publish(topic: string, bodies: Uint8Array[]): Promise<number[]> {
    if (this.#closed) return this.#propose(topic, bodies);
    const bytes = bodies.reduce((n, b) => n + b.length, 0);
    return new Promise((resolve, reject) => {
      const batches = this.#filling.get(topic) ?? [];
      let batch = batches[batches.length - 1];
      const full = batch &&
        (batch.bytes + bytes > MAX_BATCH_BYTES || batch.waiters.length >= MAX_BATCH_PUBLISHES);
      if (!batch || full) {
        batch = { bodies: [], bytes: 0, waiters: [] };
        batches.push(batch);
        this.#filling.set(topic, batches);
      }
      batch.bodies.push(...bodies);
      batch.bytes += bytes;
      batch.waiters.push({ count: bodies.length, resolve, reject });
      if (!this.#woken && !this.#inFlight.has(topic)) {
        this.#woken = true;
        this.#turns.wake(this.#oneAtATime());
      }
    });
  }

  /** Stops batching: what is filling is proposed at once, and a publish after this goes alone. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const topic of [...this.#filling.keys()]) this.#send(topic);
  }

  /** Whether to write in this turn's microtasks: publishers come one at a time, and this is not a probe. */
  #oneAtATime(): boolean {
    return this.#singles >= SINGLES && ++this.#quick % PROBE_EVERY !== 0;
  }

  /** Proposes what is filling for `topic` (a batch per command, in order); the next waits until all are done. */
  #send(topic: string): void {
    const batches = this.#filling.get(topic);
    if (!batches) return;
    this.#filling.delete(topic);
    this.#inFlight.add(topic);
    this.#singles = batches.length === 1 && batches[0].waiters.length === 1 ? this.#singles + 1 : 0;
    const proposed = batches.map(({ bodies, waiters }) =>
      this.#propose(topic, bodies).then((ids) => {
        let at = 0;
        for (const w of waiters) {
          w.resolve(ids.slice(at, at + w.count));
          at += w.count;
        }
      }, (err) => {
        for (const w of waiters) w.reject(err);
      })
    );
    Promise.all(proposed).then(() => {
      this.#inFlight.delete(topic);
      if (this.#filling.has(topic)) this.#send(topic);
    });
  }
}
