/**
 * Queue consumers. Each (topic, consumer service) pair has a durable cursor:
 * every consumer gets every message of its topic, in publish order, at least
 * once. A message is acknowledged when the job exits 0; a failure is retried
 * after an exponential backoff (later messages wait: order is kept); after
 * `maxAttempts` failures the message moves to the dead-letter list.
 * Acks are group-committed (every `ackBatch` messages, or when the topic runs
 * dry): a crash may redeliver up to that many handled messages, never lose one.
 * Cursors exist where the backend says (the state the log applied); only the
 * server that `leads` delivers, and one that stops leading forgets what it
 * had not acknowledged (the next leader delivers it again).
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

/** Durable storage of topics and cursors. A change is durable once its promise resolves. */
export interface QueueBackend {
  /** The first message after the consumer's cursor and after `after` (acks not yet flushed); none without a cursor. */
  next(topic: string, consumer: string, after?: number): QueuedMessage | undefined;
  ack(topic: string, consumer: string, id: number): Promise<void>;
  retryLater(
    topic: string,
    consumer: string,
    id: number,
    attempts: number,
    notBefore: number,
    error: string,
  ): Promise<void>;
  deadLetter(topic: string, consumer: string, message: QueuedMessage, attempts: number, error: string): Promise<void>;
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
  readonly #leads: () => boolean;

  constructor(opts: {
    backend: QueueBackend;
    clock: Clock;
    deliver: Deliver;
    policy: RetryPolicy;
    log?: (line: string) => void;
    /** Handled messages acknowledged per durable write (default 32). */
    ackBatch?: number;
    /** Whether this server delivers now (the cluster's leader); default: always. */
    leads?: () => boolean;
  }) {
    this.#leads = opts.leads ?? (() => true);
    this.#backend = opts.backend;
    this.#clock = opts.clock;
    this.#deliver = opts.deliver;
    this.#policy = opts.policy;
    this.#log = opts.log ?? (() => {});
    this.#ackBatch = Math.max(1, opts.ackBatch ?? 32);
  }

  /** Makes the consumer loops exactly `subs` (their cursors are the backend's). */
  setSubscriptions(subs: Subscription[]): void {
    const wanted = new Map(subs.map((s) => [key(s), s]));
    for (const [k, loop] of this.#loops) {
      if (!wanted.has(k)) {
        loop.abort.abort();
        this.#loops.delete(k);
      }
    }
    for (const [k, sub] of wanted) if (!this.#loops.has(k)) this.#startLoop(k, sub);
  }

  /** Wakes the consumers of `topic` (after a publish), or every consumer. */
  notify(topic?: string): void {
    for (const loop of this.#loops.values()) if (topic === undefined || loop.sub.topic === topic) loop.wake();
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
    const flush = async () => {
      if (unflushed === 0) return;
      try {
        await this.#backend.ack(sub.topic, sub.consumer, handled);
      } catch (err) {
        // Not acknowledged (this server no longer leads): whoever leads delivers those messages again.
        this.#log(`queue ${sub.topic}: ${unflushed} ack(s) of ${sub.consumer} not stored: ${err}`);
        handled = 0;
      }
      unflushed = 0;
    };
    loop.idle = (async () => {
      while (!abort.signal.aborted) {
        if (!this.#leads()) {
          await flush();
          handled = 0;
          await waitFor(this.#clock.now() + 250);
          continue;
        }
        const message = this.#backend.next(sub.topic, sub.consumer, handled);
        if (!message) {
          await flush();
          // A publish wakes the loop; the deadline catches what another leader stored while this one followed.
          await waitFor(this.#clock.now() + IDLE_RECHECK_MS);
          continue;
        }
        if (message.notBefore > this.#clock.now()) {
          await flush();
          await waitFor(message.notBefore);
          continue;
        }
        const attempt = message.attempts + 1;
        const result = await this.#deliver(sub, message, attempt).catch((err) => ({ ok: false, error: String(err) }));
        if (abort.signal.aborted && !result.ok) break; // the service went away mid-delivery: keep it for later
        if (result.ok) {
          handled = message.id;
          if (++unflushed >= this.#ackBatch) await flush();
          continue;
        }
        await flush(); // a failure's state is written after the acks before it
        try {
          if (attempt >= this.#policy.maxAttempts) {
            await this.#backend.deadLetter(sub.topic, sub.consumer, message, attempt, result.error ?? "failed");
            this.#log(
              `queue ${sub.topic}: message ${message.id} dead-lettered for ${sub.consumer} after ${attempt} attempts`,
            );
          } else {
            const notBefore = this.#clock.now() + retryDelay(attempt, this.#policy);
            const error = result.error ?? "failed";
            await this.#backend.retryLater(sub.topic, sub.consumer, message.id, attempt, notBefore, error);
          }
        } catch (err) {
          // Not stored (this server no longer leads): the message is delivered again by whoever leads.
          this.#log(`queue ${sub.topic}: the failure of message ${message.id} was not stored: ${err}`);
          handled = 0;
        }
      }
      await flush();
    })().catch((err) => this.#log(`queue ${sub.topic} consumer ${sub.consumer} stopped: ${err}`));
    this.#loops.set(k, loop);
  }
}

/** How long an idle consumer waits before it looks for messages again without being woken. */
const IDLE_RECHECK_MS = 1000;

function key(s: Subscription): string {
  return `${s.topic}\u0000${s.consumer}`;
}
