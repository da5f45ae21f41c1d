/** Cron run history and last firing per job, in the node's SQLite store. Implements `CronBackend`. */

import type { CronBackend, CronRun } from "../triggers/cron_scheduler.ts";
import type { Store } from "./store.ts";

const schema = `
CREATE TABLE IF NOT EXISTS cron_state (service TEXT NOT NULL, trigger TEXT NOT NULL, last_scheduled INTEGER NOT NULL,
  PRIMARY KEY (service, trigger));
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, trigger TEXT NOT NULL, scheduled_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL, duration_ms REAL NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
  output_tail TEXT NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS runs_service ON runs (service, id);
`;

/** How many runs are kept per service. */
const KEEP_RUNS = 1000;

export class RunStore implements CronBackend {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
    store.db.exec(schema);
  }

  lastScheduled(service: string, trigger: string): number | undefined {
    const row = this.#store.db.prepare("SELECT last_scheduled FROM cron_state WHERE service = ? AND trigger = ?").get(
      service,
      trigger,
    ) as { last_scheduled: number } | undefined;
    return row?.last_scheduled;
  }

  setLastScheduled(service: string, trigger: string, at: number): void {
    this.#store.write(() =>
      this.#store.db.prepare(
        `INSERT INTO cron_state (service, trigger, last_scheduled) VALUES (?, ?, ?)
         ON CONFLICT (service, trigger) DO UPDATE SET last_scheduled = excluded.last_scheduled`,
      ).run(service, trigger, at)
    );
  }

  recordRun(run: CronRun): void {
    this.#store.transaction(() => {
      const { lastInsertRowid } = this.#store.db.prepare(
        `INSERT INTO runs (service, trigger, scheduled_at, started_at, duration_ms, status, exit_code, output_tail, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        run.service,
        run.trigger,
        run.scheduledAt,
        run.startedAt,
        run.durationMs,
        run.status,
        run.exitCode ?? null,
        run.outputTail,
        run.error ?? null,
      );
      this.#store.db.prepare("DELETE FROM runs WHERE service = ? AND id <= ?").run(
        run.service,
        Number(lastInsertRowid) - KEEP_RUNS,
      );
    });
  }

  /** The newest runs of `service` first. */
  runs(service: string, limit = 50): CronRun[] {
    const rows = this.#store.db.prepare(
      `SELECT service, trigger, scheduled_at, started_at, duration_ms, status, exit_code, output_tail, error
       FROM runs WHERE service = ? ORDER BY id DESC LIMIT ?`,
    ).all(service, limit) as {
      service: string;
      trigger: string;
      scheduled_at: number;
      started_at: number;
      duration_ms: number;
      status: CronRun["status"];
      exit_code: number | null;
      output_tail: string;
      error: string | null;
    }[];
    return rows.map((r) => ({
      service: r.service,
      trigger: r.trigger,
      scheduledAt: r.scheduled_at,
      startedAt: r.started_at,
      durationMs: r.duration_ms,
      status: r.status,
      ...(r.exit_code !== null && { exitCode: r.exit_code }),
      outputTail: r.output_tail,
      ...(r.error !== null && { error: r.error }),
    }));
  }

  /** Drops the history and state of a removed service. */
  forget(service: string): void {
    this.#store.transaction(() => {
      this.#store.db.prepare("DELETE FROM runs WHERE service = ?").run(service);
      this.#store.db.prepare("DELETE FROM cron_state WHERE service = ?").run(service);
    });
  }
}
