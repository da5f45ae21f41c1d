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
