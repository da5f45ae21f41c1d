/**
 * The event bus: dotted event names, glob subscriptions, fan-out. Each
 * subscriber has a durable inbox (a queue topic of its own), so an event is
 * delivered to every subscriber at least once, in publish order, with the
 * queue's retries and dead letters. An event nobody subscribes to is dropped.
 */

import { matchEvent, validEventName } from "./pattern.ts";
import type { Subscription } from "./queue.ts";

export interface EventSubscription {
  consumer: string;
  pattern: string;
}

/** Appends to a topic durably (the queue store, through the log); resolves once stored. */
export type PublishToTopic = (topic: string, bodies: Uint8Array[], meta: Record<string, string>) => Promise<unknown>;

export class EventBus {
  readonly #publish: PublishToTopic;
  readonly #notify: (topic: string) => void;
  #subs: EventSubscription[] = [];

  constructor(publish: PublishToTopic, notify: (topic: string) => void) {
    this.#publish = publish;
    this.#notify = notify;
  }

  /** The queue topic that holds `consumer`'s events. */
  static inbox(consumer: string): string {
    return `@events/${consumer}`;
  }

  setSubscriptions(subs: EventSubscription[]): void {
    this.#subs = [...subs];
  }

  /** The queue subscriptions that deliver the inboxes. */
  inboxSubscriptions(): Subscription[] {
    const consumers = [...new Set(this.#subs.map((s) => s.consumer))];
    return consumers.map((consumer) => ({ topic: EventBus.inbox(consumer), consumer }));
  }

  /** Publishes `name` into every subscriber's inbox; resolves with the consumers it was delivered to. */
  async publish(name: string, data: Uint8Array): Promise<string[]> {
    if (!validEventName(name)) throw new RangeError(`invalid event name ${JSON.stringify(name)}`);
    const to = [...new Set(this.#subs.filter((s) => matchEvent(s.pattern, name)).map((s) => s.consumer))].sort();
    for (const consumer of to) {
      const topic = EventBus.inbox(consumer);
      await this.#publish(topic, [data], { event: name });
      this.#notify(topic);
    }
    return to;
  }
}
