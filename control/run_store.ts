/**
 * Cron run history and the last firing claimed per job, in the node's SQLite
 * store, as the state machine applies them: a firing is claimed through the
 * log before it runs (so it runs once cluster-wide, across a failover too),
 * and its run is recorded through the log once it ends.
 */

import type { StatementSync } from "node:sqlite";
import type { CronRun } from "../triggers/cron_scheduler.ts";
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

/** The run tables, for a snapshot. */
export interface RunTables {
  state: { service: string; trigger: string; last_scheduled: number }[];
  runs: Record<string, unknown>[];
}

export class RunStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
    store.db.exec(schema);
  }

  lastScheduled(service: string, trigger: string): number | undefined {
    const row = this.#store.sql("SELECT last_scheduled FROM cron_state WHERE service = ? AND trigger = ?").get(
      service,
      trigger,
    ) as { last_scheduled: number } | undefined;
    return row?.last_scheduled;
  }

  /** Claims firing `at` of a job: true if no later or equal firing was claimed before (inside the machine's transaction). */
  applyClaim(service: string, trigger: string, at: number): boolean {
    const last = this.lastScheduled(service, trigger);
    if (last !== undefined && last >= at) return false;
    this.#store.sql(
      `INSERT INTO cron_state (service, trigger, last_scheduled) VALUES (?, ?, ?)
       ON CONFLICT (service, trigger) DO UPDATE SET last_scheduled = excluded.last_scheduled`,
    ).run(service, trigger, at);
    return true;
  }

  /** Records a run (inside the machine's transaction), keeping the newest runs of its service. */
  applyRun(run: CronRun): void {
    const { lastInsertRowid } = this.#store.sql(
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
    this.#store.sql("DELETE FROM runs WHERE service = ? AND id <= ?").run(
      run.service,
      Number(lastInsertRowid) - KEEP_RUNS,
    );
  }

  /** The newest runs of `service` first. */
  runs(service: string, limit = 50): CronRun[] {
    const rows = this.#store.sql(
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

  /** Drops the history and state of services no longer deployed (inside the machine's transaction). */
  applyForget(deployed: Set<string>): void {
    const known = this.#store.sql("SELECT service FROM cron_state UNION SELECT DISTINCT service FROM runs").all() as {
      service: string;
    }[];
    for (const { service } of known) {
      if (deployed.has(service)) continue;
      this.#store.sql("DELETE FROM runs WHERE service = ?").run(service);
      this.#store.sql("DELETE FROM cron_state WHERE service = ?").run(service);
    }
  }

  /** Replaces the run tables with a snapshot's (inside the caller's transaction). */
  load(t: RunTables): void {
    const db = this.#store.db;
    db.exec("DELETE FROM cron_state; DELETE FROM runs;");
    const state = this.#store.sql("INSERT INTO cron_state (service, trigger, last_scheduled) VALUES (?, ?, ?)");
    for (const s of t.state) state.run(s.service, s.trigger, s.last_scheduled);
    const run = this.#store.sql(
      `INSERT INTO runs (id, service, trigger, scheduled_at, started_at, duration_ms, status, exit_code, output_tail, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    type Value = string | number | null;
    for (const r of t.runs) {
      const v = (k: string) => r[k] as Value;
      run.run(
        v("id"),
        v("service"),
        v("trigger"),
        v("scheduled_at"),
        v("started_at"),
        v("duration_ms"),
        v("status"),
        v("exit_code"),
        v("output_tail"),
        v("error"),
      );
    }
  }
}

/** The run tables (for a snapshot; `sql` prepares on the connection to read). */
export function dumpRuns(sql: (text: string) => StatementSync): RunTables {
  return {
    state: sql("SELECT service, trigger, last_scheduled FROM cron_state ORDER BY service, trigger")
      .all() as unknown as RunTables["state"],
    runs: sql(
      `SELECT id, service, trigger, scheduled_at, started_at, duration_ms, status, exit_code, output_tail, error
       FROM runs ORDER BY id`,
    ).all() as Record<string, unknown>[],
  };
}
