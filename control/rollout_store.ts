/**
 * Canary rollouts as the state machine keeps them: for each service, the
 * version under analysis (its spec beside the running one's) or the outcome
 * of the last one. A deploy starts one; a `rollout-end` command, proposed by
 * the leader once the analysis decides, promotes the canary to be the
 * service's version or drops it.
 */

import type { StatementSync } from "node:sqlite";
import type { ServiceSpec } from "../config/mod.ts";
import type { StoredService } from "./store.ts";

export const ROLLOUTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS rollouts (
  service TEXT PRIMARY KEY, version INTEGER NOT NULL, spec TEXT NOT NULL, from_version INTEGER NOT NULL,
  deploy INTEGER NOT NULL, started_at INTEGER NOT NULL, state TEXT NOT NULL, ended_at INTEGER, reason TEXT);
`;

type Sql = (text: string) => StatementSync;

export type RolloutState = "analysing" | "promoted" | "rolled_back";

/** What one node measured of one version during a canary: counts, latency samples and their p99. */
export interface NodeFigures {
  requests: number;
  errors: number;
  samples: number;
  p99Ms?: number;
}

export interface RolloutRecord {
  service: string;
  /** The canary's version, and the version it would replace. */
  version: number;
  from: number;
  spec: ServiceSpec;
  deploy: number;
  startedAt: number;
  state: RolloutState;
  endedAt?: number;
  reason?: string;
}

/** The rows as a snapshot carries them. */
export type RolloutRows = {
  service: string;
  version: number;
  spec: string;
  from_version: number;
  deploy: number;
  started_at: number;
  state: string;
  ended_at: number | null;
  reason: string | null;
}[];

/** Starts the canaries a deploy made (each replacing any earlier outcome of its service). */
export function writeCanaries(sql: Sql, deploy: number, canaries: StoredService[], from: Record<string, number>): void {
  const insert = sql(
    `INSERT OR REPLACE INTO rollouts (service, version, spec, from_version, deploy, started_at, state, ended_at, reason)
       VALUES (?, ?, ?, ?, ?, ?, 'analysing', NULL, NULL)`,
  );
  for (const c of canaries) {
    const key = `${c.spec.project}/${c.spec.name}`;
    insert.run(key, c.version, JSON.stringify(c.spec), from[key] ?? 0, deploy, c.updatedAt);
  }
}

/** Ends the canary of `service` at `version` (one already ended, or replaced since, is left alone): whether it did. */
export function endRollout(
  sql: Sql,
  service: string,
  version: number,
  state: RolloutState,
  reason: string,
  at: number,
) {
  const r = sql(
    "UPDATE rollouts SET state = ?, ended_at = ?, reason = ? WHERE service = ? AND version = ? AND state = 'analysing'",
  ).run(state, at, reason, service, version);
  return Number(r.changes) > 0;
}

/** Forgets the rollouts of `services` (only those in `state`, when given). */
export function forgetRollouts(sql: Sql, services: string[], state?: RolloutState): void {
  const remove = state === undefined
    ? sql("DELETE FROM rollouts WHERE service = ?")
    : sql("DELETE FROM rollouts WHERE service = ? AND state = ?");
  for (const s of services) remove.run(...(state === undefined ? [s] : [s, state]));
}

export function readRollouts(sql: Sql, state?: RolloutState): RolloutRecord[] {
  const rows =
    (state === undefined
      ? sql("SELECT * FROM rollouts ORDER BY service").all()
      : sql("SELECT * FROM rollouts WHERE state = ? ORDER BY service").all(state)) as RolloutRows;
  return rows.map((r) => ({
    service: r.service,
    version: r.version,
    from: r.from_version,
    spec: JSON.parse(r.spec) as ServiceSpec,
    deploy: r.deploy,
    startedAt: r.started_at,
    state: r.state as RolloutState,
    ...(r.ended_at !== null && { endedAt: r.ended_at }),
    ...(r.reason !== null && { reason: r.reason }),
  }));
}

/** The canaries under way, as services to run beside their services' versions. */
export function canaryServices(sql: Sql): (StoredService & { canary: true })[] {
  return readRollouts(sql, "analysing").map((r) => ({
    spec: r.spec,
    version: r.version,
    updatedAt: r.startedAt,
    canary: true,
  }));
}

export function dumpRollouts(sql: Sql): RolloutRows {
  return sql("SELECT * FROM rollouts ORDER BY service").all() as RolloutRows;
}

export function loadRollouts(sql: Sql, rows: RolloutRows): void {
  sql("DELETE FROM rollouts").run();
  const insert = sql(
    `INSERT INTO rollouts (service, version, spec, from_version, deploy, started_at, state, ended_at, reason)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of rows) {
    insert.run(r.service, r.version, r.spec, r.from_version, r.deploy, r.started_at, r.state, r.ended_at, r.reason);
  }
}
