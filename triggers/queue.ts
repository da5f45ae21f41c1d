/**
 * Queue consumers. Each (topic, consumer service) pair has a durable cursor:
 * every consumer gets every message of its topic, in publish order, at least
 * once. A message is acknowledged when the job exits 0; a failure is retried
 * after an exponential backoff (later messages wait: order is kept); after
 * `maxAttempts` failures the message moves to the dead-letter list.
 * Acks are group-committed (every `ackBatch` messages, or when the topic runs
 * dry): a crash may redeliver up to that many handled messages, never lose one.
 */

import { retryDelay, type RetryPolicy } from "./backoff.ts";
import type { Clock } from "./clock.ts";

export interface QueuedMessage {
  id: number;
  topic: string;
  body: Uint8Array;
  publishedAt: number;
  /** Extra facts a publisher attached (e.g. the event name). */
  meta: Record<string, string>;
  /** Failed attempts so far for this consumer. */
  attempts: number;
  /** Not before this time (a retry's backoff). */
  notBefore: number;
}

/** Durable storage of topics and cursors. Every method is durable on return. */
export interface QueueBackend {
  ensureConsumer(topic: string, consumer: string): void;
  dropConsumer(topic: string, consumer: string): void;
  /** The first message after the consumer's cursor and after `after` (acks not yet flushed). */
  next(topic: string, consumer: string, after?: number): QueuedMessage | undefined;
  ack(topic: string, consumer: string, id: number): void;
  retryLater(topic: string, consumer: string, id: number, attempts: number, notBefore: number, error: string): void;
  deadLetter(topic: string, consumer: string, message: QueuedMessage, attempts: number, error: string): void;
}

export interface Subscription {
  topic: string;
  /** `project/name` of the consuming service. */
  consumer: string;
}

export type Deliver = (
  sub: Subscription,
  message: QueuedMessage,
  attempt: number,
) => Promise<{ ok: boolean; error?: string }>;

interface Loop {
  sub: Subscription;
  abort: AbortController;
  wake: () => void;
  idle: Promise<void>;
}

export class QueueConsumers {
  readonly #backend: QueueBackend;
  readonly #clock: Clock;
  readonly #deliver: Deliver;
  readonly #policy: RetryPolicy;
  readonly #log: (line: string) => void;
  readonly #loops = new Map<string, Loop>();
  readonly #ackBatch: number;

  constructor(opts: {
    backend: QueueBackend;
    clock: Clock;
    deliver: Deliver;
    policy: RetryPolicy;
    log?: (line: string) => void;
    /** Handled messages acknowledged per durable write (default 32). */
    ackBatch?: number;
  }) {
    this.#backend = opts.backend;
    this.#clock = opts.clock;
    this.#deliver = opts.deliver;
    this.#policy = opts.policy;
    this.#log = opts.log ?? (() => {});
    this.#ackBatch = Math.max(1, opts.ackBatch ?? 32);
  }

  /**
   * Makes the consumers exactly `subs`. `dropped` lists consumers whose service
   * was removed: their cursors are deleted, not just paused.
   */
  setSubscriptions(subs: Subscription[], dropped: Subscription[] = []): void {
    const wanted = new Map(subs.map((s) => [key(s), s]));
    for (const [k, loop] of this.#loops) {
      if (!wanted.has(k)) {
        loop.abort.abort();
        this.#loops.delete(k);
      }
    }
    for (const d of dropped) if (!wanted.has(key(d))) this.#backend.dropConsumer(d.topic, d.consumer);
    for (const [k, sub] of wanted) {
      if (this.#loops.has(k)) continue;
      this.#backend.ensureConsumer(sub.topic, sub.consumer);
      this.#startLoop(k, sub);
    }
  }

  /** Wakes the consumers of `topic` (after a publish). */
  notify(topic: string): void {
    for (const loop of this.#loops.values()) if (loop.sub.topic === topic) loop.wake();
  }

  async stop(): Promise<void> {
    const loops = [...this.#loops.values()];
    this.#loops.clear();
    for (const loop of loops) loop.abort.abort();
    await Promise.all(loops.map((l) => l.idle));
  }

  #startLoop(k: string, sub: Subscription): void {
    const abort = new AbortController();
    let wake = () => {};
    let woken = false;
    const loop: Loop = {
      sub,
      abort,
      wake: () => {
        woken = true;
        wake();
      },
      idle: Promise.resolve(),
    };
    const waitFor = (until: number | undefined) => {
      if (woken) {
        woken = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const stop = new AbortController();
        const done = () => {
          stop.abort();
          woken = false;
          resolve();
        };
        wake = done;
        abort.signal.addEventListener("abort", done, { once: true });
        if (until !== undefined) this.#clock.sleepUntil(until, stop.signal).then(done);
      });
    };
    // Handled but not yet durably acknowledged: the highest id, and how many.
    let handled = 0;
    let unflushed = 0;
    const flush = () => {
      if (unflushed === 0) return;
      this.#backend.ack(sub.topic, sub.consumer, handled);
      unflushed = 0;
    };
    loop.idle = (async () => {
      while (!abort.signal.aborted) {
        const message = this.#backend.next(sub.topic, sub.consumer, handled);
        if (!message) {
          flush();
          await waitFor(undefined);
          continue;
        }
        if (message.notBefore > this.#clock.now()) {
          flush();
          await waitFor(message.notBefore);
          continue;
        }
        const attempt = message.attempts + 1;
        const result = await this.#deliver(sub, message, attempt).catch((err) => ({ ok: false, error: String(err) }));
        if (abort.signal.aborted && !result.ok) break; // the service went away mid-delivery: keep it for later
        if (result.ok) {
          handled = message.id;
          if (++unflushed >= this.#ackBatch) flush();
          continue;
        }
        flush(); // a failure's state is written after the acks before it
        if (attempt >= this.#policy.maxAttempts) {
          this.#backend.deadLetter(sub.topic, sub.consumer, message, attempt, result.error ?? "failed");
          this.#log(
            `queue ${sub.topic}: message ${message.id} dead-lettered for ${sub.consumer} after ${attempt} attempts`,
          );
        } else {
          const notBefore = this.#clock.now() + retryDelay(attempt, this.#policy);
          this.#backend.retryLater(sub.topic, sub.consumer, message.id, attempt, notBefore, result.error ?? "failed");
        }
      }
      flush();
    })().catch((err) => this.#log(`queue ${sub.topic} consumer ${sub.consumer} stopped: ${err}`));
    this.#loops.set(k, loop);
  }
}

function key(s: Subscription): string {
  return `${s.topic}\u0000${s.consumer}`;
}
