/**
 * The placements the log applied: one row per replica of a placed service
 * (control/placements.ts plans them), written only by the state machine.
 */

import type { RuntimeKind } from "../config/mod.ts";
import type { StatementSync } from "node:sqlite";

/** One replica of a service on one node, as the log holds it. */
export interface PlacementRecord {
  replica: number;
  node: string;
  runtime: RuntimeKind;
  gpu?: { group: number; count: number };
}

/** Placements by service key (`project/name`). */
export type Placements = Record<string, PlacementRecord[]>;

export const PLACEMENTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS placements (service TEXT NOT NULL, replica INTEGER NOT NULL, node TEXT NOT NULL,
  runtime TEXT NOT NULL, gpu TEXT, PRIMARY KEY (service, replica));
`;

type Sql = (text: string) => StatementSync;

/** Every placement the log applied, by service. */
export function readPlacements(sql: Sql): Placements {
  const rows = sql("SELECT service, replica, node, runtime, gpu FROM placements ORDER BY service, replica").all() as {
    service: string;
    replica: number;
    node: string;
    runtime: RuntimeKind;
    gpu: string | null;
  }[];
  const out: Placements = {};
  for (const r of rows) {
    (out[r.service] ??= []).push({
      replica: r.replica,
      node: r.node,
      runtime: r.runtime,
      ...(r.gpu !== null && { gpu: JSON.parse(r.gpu) }),
    });
  }
  return out;
}

/** Replaces the placements of each service named in `changed` (an empty list: the service runs nowhere now). */
export function writePlacements(sql: Sql, changed: Placements): void {
  const clear = sql("DELETE FROM placements WHERE service = ?");
  const insert = sql("INSERT INTO placements (service, replica, node, runtime, gpu) VALUES (?, ?, ?, ?, ?)");
  for (const [service, list] of Object.entries(changed)) {
    clear.run(service);
    for (const p of list) insert.run(service, p.replica, p.node, p.runtime, p.gpu ? JSON.stringify(p.gpu) : null);
  }
}

/** What a node said of its workload of a service: ready to serve at `version`, or failed to start there. */
export interface ReplicaState {
  version: number;
  state: "ready" | "failed";
  message?: string;
  at: number;
}

/** Replica states by service key, then by node. */
export type ReplicaStates = Record<string, Record<string, ReplicaState>>;

/** A node's report, as its command carries it. */
export interface ReplicaReport {
  service: string;
  version: number;
  state: "ready" | "failed";
  message?: string;
}

export const REPLICA_STATES_SCHEMA = `
CREATE TABLE IF NOT EXISTS replica_states (service TEXT NOT NULL, node TEXT NOT NULL, version INTEGER NOT NULL,
  state TEXT NOT NULL, message TEXT, at INTEGER NOT NULL, PRIMARY KEY (service, node));
`;

export function readReplicaStates(sql: Sql): ReplicaStates {
  const rows = sql("SELECT service, node, version, state, message, at FROM replica_states ORDER BY service, node")
    .all() as {
      service: string;
      node: string;
      version: number;
      state: "ready" | "failed";
      message: string | null;
      at: number;
    }[];
  const out: ReplicaStates = {};
  for (const r of rows) {
    (out[r.service] ??= {})[r.node] = {
      version: r.version,
      state: r.state,
      at: r.at,
      ...(r.message !== null && { message: r.message }),
    };
  }
  return out;
}

/** Applies `node`'s report: the states it gives, and the services it runs no more (`gone`). */
export function writeReplicaStates(sql: Sql, node: string, at: number, states: ReplicaReport[], gone: string[]): void {
  const upsert = sql(
    `INSERT INTO replica_states (service, node, version, state, message, at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (service, node) DO UPDATE SET version = excluded.version, state = excluded.state,
       message = excluded.message, at = excluded.at`,
  );
  for (const s of states) upsert.run(s.service, node, s.version, s.state, s.message ?? null, at);
  const drop = sql("DELETE FROM replica_states WHERE service = ? AND node = ?");
  for (const service of gone) drop.run(service, node);
}

/** Loads states from a snapshot (the table emptied first by the caller). */
export function loadReplicaStates(sql: Sql, states: ReplicaStates): void {
  for (const [service, byNode] of Object.entries(states)) {
    for (const [node, s] of Object.entries(byNode)) {
      writeReplicaStates(sql, node, s.at, [{ service, ...s }], []);
    }
  }
}
