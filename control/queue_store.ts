/**
 * Queues as the state machine keeps them: messages per topic, a cursor per
 * (topic, consumer), and dead letters, in the node's SQLite store. Every
 * change comes from a command committed to the log (publish, ack, retry,
 * dead letter, and the consumers a deploy brings): the `apply*` methods run
 * inside the state machine's transaction, with the time the command carries.
 * A message is deleted once every consumer of its topic has moved past it.
 * Topics nobody consumes keep their messages, and a consumer that appears
 * later starts from the oldest.
 */

import type { StatementSync } from "node:sqlite";
import type { QueuedMessage } from "../triggers/queue.ts";
import { fromBase64, toBase64 } from "../runtime/bytes.ts";
import type { Store } from "./store.ts";

const schema = `
CREATE TABLE IF NOT EXISTS queue_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body BLOB NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}', published_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS queue_messages_topic ON queue_messages (topic, id);
CREATE TABLE IF NOT EXISTS queue_cursors (
  topic TEXT NOT NULL, consumer TEXT NOT NULL, cursor INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  PRIMARY KEY (topic, consumer));
CREATE TABLE IF NOT EXISTS queue_dead (
  id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, consumer TEXT NOT NULL, message_id INTEGER NOT NULL,
  body BLOB NOT NULL, meta TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL);
`;

export interface TopicInfo {
  topic: string;
  /** Messages kept (not yet consumed by every consumer, or with no consumer at all). */
  retained: number;
  consumers: { consumer: string; pending: number; attempts: number; lastError?: string; dead: number }[];
}

export interface DeadLetter {
  id: number;
  topic: string;
  consumer: string;
  messageId: number;
  body: string;
  meta: Record<string, string>;
  attempts: number;
  error: string;
  at: number;
}

interface MessageRow {
  id: number;
  topic: string;
  body: Uint8Array;
  meta: string;
  published_at: number;
}

/** The tables of queue state, for a snapshot. */
export interface QueueTables {
  messages: { id: number; topic: string; body: string; meta: string; published_at: number }[];
  cursors: {
    topic: string;
    consumer: string;
    cursor: number;
    attempts: number;
    not_before: number;
    last_error: string | null;
  }[];
  dead: {
    id: number;
    topic: string;
    consumer: string;
    message_id: number;
    body: string;
    meta: string;
    attempts: number;
    error: string;
    at: number;
  }[];
}

export class QueueStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
    store.db.exec(schema);
  }

  /** Appends messages to `topic` (published at `at`); returns their ids. */
  applyPublish(topic: string, bodies: Uint8Array[], meta: Record<string, string>, at: number): number[] {
    const insert = this.#store.sql(
      "INSERT INTO queue_messages (topic, body, meta, published_at) VALUES (?, ?, ?, ?)",
    );
    const metaText = JSON.stringify(meta);
    return bodies.map((body) => Number(insert.run(topic, body, metaText, at).lastInsertRowid));
  }

  /**
   * Makes the cursors match the consumers the services declare: a new one starts at its topic's oldest kept
   * message; those of consumers no longer deployed are deleted (a service that only stops consuming keeps its
   * cursor, paused).
   */
  applyConsumers(wanted: { topic: string; consumer: string }[], deployed: Set<string>): void {
    const ensure = this.#store.sql(
      `INSERT OR IGNORE INTO queue_cursors (topic, consumer, cursor)
       VALUES (?, ?, COALESCE((SELECT MIN(id) - 1 FROM queue_messages WHERE topic = ?), (SELECT COALESCE(MAX(id), 0) FROM queue_messages)))`,
    );
    for (const { topic, consumer } of wanted) ensure.run(topic, consumer, topic);
    const cursors = this.#store.sql("SELECT topic, consumer FROM queue_cursors").all() as {
      topic: string;
      consumer: string;
    }[];
    for (const c of cursors) {
      if (deployed.has(c.consumer)) continue;
      this.#store.sql("DELETE FROM queue_cursors WHERE topic = ? AND consumer = ?").run(c.topic, c.consumer);
      this.#collect(c.topic);
    }
  }

  next(topic: string, consumer: string, after = 0): QueuedMessage | undefined {
    const cur = this.#store.sql(
      "SELECT cursor, attempts, not_before FROM queue_cursors WHERE topic = ? AND consumer = ?",
    )
      .get(topic, consumer) as { cursor: number; attempts: number; not_before: number } | undefined;
    if (!cur) return undefined;
    const row = this.#store.sql(
      "SELECT id, topic, body, meta, published_at FROM queue_messages WHERE topic = ? AND id > ? ORDER BY id LIMIT 1",
    ).get(topic, Math.max(cur.cursor, after)) as MessageRow | undefined;
    if (!row) return undefined;
    // Retry state belongs to the message right after the durable cursor.
    const first = after <= cur.cursor;
    return { ...toMessage(row), attempts: first ? cur.attempts : 0, notBefore: first ? cur.not_before : 0 };
  }

  /** The consumer handled every message through `id`. */
  applyAck(topic: string, consumer: string, id: number): void {
    this.#advance(topic, consumer, id);
    this.#collect(topic);
  }

  /** The message after the cursor failed `attempts` times; the next try is not before `notBefore`. */
  applyRetry(topic: string, consumer: string, attempts: number, notBefore: number, error: string): void {
    this.#store.sql(
      "UPDATE queue_cursors SET attempts = ?, not_before = ?, last_error = ? WHERE topic = ? AND consumer = ?",
    ).run(attempts, notBefore, error.slice(0, 2000), topic, consumer);
  }

  /** Message `messageId` failed for good: kept among the dead letters (at `at`), and the consumer moves past it. */
  applyDead(topic: string, consumer: string, messageId: number, attempts: number, error: string, at: number): void {
    const row = this.#store.sql("SELECT body, meta FROM queue_messages WHERE id = ? AND topic = ?").get(
      messageId,
      topic,
    ) as
      | { body: Uint8Array; meta: string }
      | undefined;
    if (row) {
      this.#store.sql(
        "INSERT INTO queue_dead (topic, consumer, message_id, body, meta, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(topic, consumer, messageId, row.body, row.meta, attempts, error.slice(0, 2000), at);
    }
    this.#advance(topic, consumer, messageId);
    this.#collect(topic);
  }

  /** Every queue table, bodies in base64, for a snapshot. */
  /** Replaces every queue table with a snapshot's (inside the caller's transaction). */
  load(t: QueueTables): void {
    const db = this.#store.db;
    db.exec("DELETE FROM queue_messages; DELETE FROM queue_cursors; DELETE FROM queue_dead;");
    const message = this.#store.sql(
      "INSERT INTO queue_messages (id, topic, body, meta, published_at) VALUES (?, ?, ?, ?, ?)",
    );
    for (const m of t.messages) message.run(m.id, m.topic, fromBase64(m.body), m.meta, m.published_at);
    const cursor = this.#store.sql(
      "INSERT INTO queue_cursors (topic, consumer, cursor, attempts, not_before, last_error) VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const c of t.cursors) cursor.run(c.topic, c.consumer, c.cursor, c.attempts, c.not_before, c.last_error);
    const dead = this.#store.sql(
      "INSERT INTO queue_dead (id, topic, consumer, message_id, body, meta, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for (const d of t.dead) {
      dead.run(d.id, d.topic, d.consumer, d.message_id, fromBase64(d.body), d.meta, d.attempts, d.error, d.at);
    }
  }

  topics(): TopicInfo[] {
    const topics = this.#store.sql(
      "SELECT topic FROM queue_messages UNION SELECT topic FROM queue_cursors UNION SELECT topic FROM queue_dead ORDER BY topic",
    ).all() as { topic: string }[];
    return topics.map(({ topic }) => {
      const retained =
        (this.#store.sql("SELECT COUNT(*) AS n FROM queue_messages WHERE topic = ?").get(topic) as { n: number }).n;
      const cursors = this.#store.sql(
        "SELECT consumer, cursor, attempts, last_error FROM queue_cursors WHERE topic = ? ORDER BY consumer",
      )
        .all(topic) as { consumer: string; cursor: number; attempts: number; last_error: string | null }[];
      const deadBy = new Map(
        (this.#store.sql("SELECT consumer, COUNT(*) AS n FROM queue_dead WHERE topic = ? GROUP BY consumer").all(
          topic,
        ) as {
          consumer: string;
          n: number;
        }[]).map((r) => [r.consumer, r.n]),
      );
      const consumers = cursors.map((c) => ({
        consumer: c.consumer,
        pending: (this.#store.sql("SELECT COUNT(*) AS n FROM queue_messages WHERE topic = ? AND id > ?").get(
          topic,
          c.cursor,
        ) as {
          n: number;
        }).n,
        attempts: c.attempts,
        ...(c.last_error && c.attempts > 0 ? { lastError: c.last_error } : {}),
        dead: deadBy.get(c.consumer) ?? 0,
      }));
      for (const [consumer, dead] of deadBy) {
        if (!cursors.some((c) => c.consumer === consumer)) consumers.push({ consumer, pending: 0, attempts: 0, dead });
      }
      return { topic, retained, consumers };
    });
  }

  dead(topic?: string, limit = 100): DeadLetter[] {
    const rows = this.#store.sql(
      `SELECT id, topic, consumer, message_id, body, meta, attempts, error, at FROM queue_dead
       ${topic ? "WHERE topic = ?" : ""} ORDER BY id DESC LIMIT ?`,
    ).all(...(topic ? [topic, limit] : [limit])) as {
      id: number;
      topic: string;
      consumer: string;
      message_id: number;
      body: Uint8Array;
      meta: string;
      attempts: number;
      error: string;
      at: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      topic: r.topic,
      consumer: r.consumer,
      messageId: r.message_id,
      body: new TextDecoder().decode(r.body),
      meta: JSON.parse(r.meta),
      attempts: r.attempts,
      error: r.error,
      at: r.at,
    }));
  }

  #advance(topic: string, consumer: string, id: number): void {
    this.#store.sql(
      "UPDATE queue_cursors SET cursor = MAX(cursor, ?), attempts = 0, not_before = 0, last_error = NULL WHERE topic = ? AND consumer = ?",
    ).run(id, topic, consumer);
  }

  /** Deletes messages every consumer of `topic` has moved past (none if nobody consumes it). */
  #collect(topic: string): void {
    this.#store.sql(
      `DELETE FROM queue_messages WHERE topic = ?1
       AND EXISTS (SELECT 1 FROM queue_cursors WHERE topic = ?1)
       AND id <= (SELECT MIN(cursor) FROM queue_cursors WHERE topic = ?1)`,
    ).run(topic);
  }
}

function toMessage(row: MessageRow): Omit<QueuedMessage, "attempts" | "notBefore"> {
  return { id: row.id, topic: row.topic, body: row.body, publishedAt: row.published_at, meta: JSON.parse(row.meta) };
}

/** Every queue table, bodies in base64 (for a snapshot; `sql` prepares on the connection to read). */
export function dumpQueues(sql: (text: string) => StatementSync): QueueTables {
  const b64 = (rows: { body: Uint8Array }[]) => rows.map((r) => ({ ...r, body: toBase64(r.body) }));
  return {
    messages: b64(
      sql("SELECT id, topic, body, meta, published_at FROM queue_messages ORDER BY id").all() as {
        body: Uint8Array;
      }[],
    ) as unknown as QueueTables["messages"],
    cursors: sql(
      "SELECT topic, consumer, cursor, attempts, not_before, last_error FROM queue_cursors ORDER BY topic, consumer",
    ).all() as unknown as QueueTables["cursors"],
    dead: b64(
      sql("SELECT id, topic, consumer, message_id, body, meta, attempts, error, at FROM queue_dead ORDER BY id")
        .all() as { body: Uint8Array }[],
    ) as unknown as QueueTables["dead"],
  };
}
