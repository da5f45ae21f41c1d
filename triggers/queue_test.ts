import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { type QueueBackend, QueueConsumers, type QueuedMessage } from "./queue.ts";

/** In-memory backend with the same contract as the SQLite one (control/queue_store.ts). */
function memoryBackend() {
  const messages: QueuedMessage[] = [];
  const cursors = new Map<string, { cursor: number; attempts: number; notBefore: number }>();
  const dead: { consumer: string; id: number; attempts: number; error: string }[] = [];
  const k = (t: string, c: string) => `${t} ${c}`;
  const cursor = (t: string, c: string) => {
    // A consumer's cursor appears with it (the log's deploy makes it, in Orca), at the oldest message.
    if (!cursors.has(k(t, c))) cursors.set(k(t, c), { cursor: 0, attempts: 0, notBefore: 0 });
    return cursors.get(k(t, c))!;
  };
  const backend: QueueBackend = {
    next(t, c, after = 0) {
      const cur = cursor(t, c);
      const m = messages.find((m) => m.topic === t && m.id > Math.max(cur.cursor, after));
      const first = after <= cur.cursor;
      return m && { ...m, attempts: first ? cur.attempts : 0, notBefore: first ? cur.notBefore : 0 };
    },
    ack: (t, c, id) => Promise.resolve(void cursors.set(k(t, c), { cursor: id, attempts: 0, notBefore: 0 })),
    retryLater: (t, c, _id, attempts, notBefore) =>
      Promise.resolve(void Object.assign(cursor(t, c), { attempts, notBefore })),
    deadLetter(t, c, m, attempts, error) {
      dead.push({ consumer: c, id: m.id, attempts, error });
      cursors.set(k(t, c), { cursor: m.id, attempts: 0, notBefore: 0 });
      return Promise.resolve();
    },
  };
  const publish = (topic: string, text: string) =>
    messages.push({
      id: messages.length + 1,
      topic,
      body: new TextEncoder().encode(text),
      publishedAt: 0,
      meta: {},
      attempts: 0,
      notBefore: 0,
    });
  return { backend, publish, dead };
}

const policy = { maxAttempts: 3, baseMs: 1000, maxMs: 10_000 };

Deno.test("every consumer gets every message, in order", async () => {
  const clock = new ManualClock(0);
  const { backend, publish } = memoryBackend();
  const got: string[] = [];
  const q = new QueueConsumers({
    backend,
    clock,
    policy,
    deliver: (sub, m) => {
      got.push(`${sub.consumer}:${new TextDecoder().decode(m.body)}`);
      return Promise.resolve({ ok: true });
    },
  });
  publish("orders", "1");
  q.setSubscriptions([{ topic: "orders", consumer: "a" }, { topic: "orders", consumer: "b" }]);
  publish("orders", "2");
  publish("other", "x");
  q.notify("orders");
  await clock.advance(0);
  assert.deepEqual(got.filter((g) => g.startsWith("a")), ["a:1", "a:2"]);
  assert.deepEqual(got.filter((g) => g.startsWith("b")), ["b:1", "b:2"]);
  await q.stop();
});

Deno.test("failures are retried with backoff, keeping order; then dead-lettered", async () => {
  const clock = new ManualClock(0);
  const { backend, publish, dead } = memoryBackend();
  const attempts: string[] = [];
  const q = new QueueConsumers({
    backend,
    clock,
    policy,
    deliver: (_sub, m, attempt) => {
      const body = new TextDecoder().decode(m.body);
      attempts.push(`${clock.now()} ${body}#${attempt}`);
      // "flaky" fails twice then succeeds; "poison" always fails.
      const ok = body === "ok" || (body === "flaky" && attempt === 3);
      return Promise.resolve({ ok, error: ok ? undefined : "exit 1" });
    },
  });
  publish("t", "flaky");
  publish("t", "poison");
  publish("t", "ok");
  q.setSubscriptions([{ topic: "t", consumer: "c" }]);
  await clock.advance(20_000);
  assert.deepEqual(attempts, [
    "0 flaky#1",
    "1000 flaky#2", // backoff 1 s
    "3000 flaky#3", // backoff 2 s: succeeds
    "3000 poison#1",
    "4000 poison#2",
    "6000 poison#3", // third failure: dead letter, no more attempts
    "6000 ok#1",
  ]);
  assert.deepEqual(dead, [{ consumer: "c", id: 2, attempts: 3, error: "exit 1" }]);
  await q.stop();
});

Deno.test("acks are group-committed; a crash redelivers only unflushed ones", async () => {
  const clock = new ManualClock(0);
  const { backend, publish } = memoryBackend();
  const acks: number[] = [];
  const counting: QueueBackend = { ...backend, ack: (t, c, id) => (acks.push(id), backend.ack(t, c, id)) };
  const q = new QueueConsumers({
    backend: counting,
    clock,
    policy,
    ackBatch: 4,
    deliver: () => Promise.resolve({ ok: true }),
  });
  for (let i = 0; i < 10; i++) publish("t", `m${i}`);
  q.setSubscriptions([{ topic: "t", consumer: "c" }]);
  await clock.advance(0);
  // Two full batches, then the rest when the topic ran dry.
  assert.deepEqual(acks, [4, 8, 10]);
  await q.stop();
});

Deno.test("only the leader delivers; acks it could not store are delivered again", async () => {
  const clock = new ManualClock(0);
  const { backend, publish } = memoryBackend();
  let leads = false;
  let acksFail = false;
  const got: string[] = [];
  const q = new QueueConsumers({
    backend: {
      ...backend,
      ack: (t, c, id) => acksFail ? Promise.reject(new Error("not the leader")) : backend.ack(t, c, id),
    },
    clock,
    policy,
    leads: () => leads,
    deliver: (_sub, m) => {
      got.push(new TextDecoder().decode(m.body));
      return Promise.resolve({ ok: true });
    },
  });
  publish("t", "a");
  publish("t", "b");
  q.setSubscriptions([{ topic: "t", consumer: "c" }]);
  await clock.advance(1000);
  assert.deepEqual(got, [], "a follower delivers nothing");
  leads = true;
  acksFail = true; // the acks of a and b are lost (say, leadership moved mid-flush)
  await clock.advance(500);
  assert.deepEqual(got, ["a", "b"]);
  acksFail = false;
  await clock.advance(1500);
  assert.deepEqual(got, ["a", "b", "a", "b"], "what was not acknowledged is delivered again: at least once");
  await clock.advance(3000);
  assert.equal(got.length, 4, "and once acknowledged, never again");
  await q.stop();
});
