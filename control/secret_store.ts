/**
 * Secrets as the state machine keeps them: each name's sealed value (secret_box.ts: AES-256-GCM under the cluster's
 * key, which is never here) and when it was last set. The log, snapshots and the view workers get carry only sealed
 * values.
 */

import { createHash } from "node:crypto";
import type { StatementSync } from "node:sqlite";
import { serviceRefs, type ServiceSpec } from "../config/mod.ts";

export const SECRETS_SCHEMA = `
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, sealed TEXT NOT NULL, updated_at INTEGER NOT NULL);
`;

type Sql = (text: string) => StatementSync;

/** The commands that change them (proposed by the server that was asked, sealed there). */
export type SecretCommand =
  | { type: "secret-set"; name: string; sealed: string; at: number }
  | { type: "secret-removed"; name: string };

/** The rows as a snapshot (and a worker's view) carries them. */
export type SecretRows = { name: string; sealed: string; updated_at: number }[];

export function applySecret(sql: Sql, c: SecretCommand): void {
  if (c.type === "secret-set") {
    sql(
      `INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
    ).run(c.name, c.sealed, c.at);
  } else {
    sql("DELETE FROM secrets WHERE name = ?").run(c.name);
  }
}

export function dumpSecrets(sql: Sql): SecretRows {
  return sql("SELECT name, sealed, updated_at FROM secrets ORDER BY name").all() as SecretRows;
}

/** Replaces the table with `rows` (inside the caller's transaction). */
export function loadSecrets(sql: Sql, rows: SecretRows): void {
  sql("DELETE FROM secrets").run();
  const insert = sql("INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)");
  for (const r of rows) insert.run(r.name, r.sealed, r.updated_at);
}

/** Names and update times: all `orca secrets ls` shows. */
export function listSecrets(sql: Sql): { name: string; updatedAt: number }[] {
  return (sql("SELECT name, updated_at FROM secrets ORDER BY name").all() as { name: string; updated_at: number }[])
    .map((r) => ({ name: r.name, updatedAt: r.updated_at }));
}

export function sealedOf(sql: Sql, name: string): string | undefined {
  return (sql("SELECT sealed FROM secrets WHERE name = ?").get(name) as { sealed: string } | undefined)?.sealed;
}

/**
 * A short digest of the sealed values `spec` references (undefined when it references none): part of its workload's
 * id, so setting one of them starts the service anew with the new value. Sealed values are never equal twice (a
 * fresh IV each time), so a value set again, even the same, counts as a change.
 */
export function secretsStamp(spec: ServiceSpec, sql: Sql): string | undefined {
  const names = [...new Set(serviceRefs(spec).map((r) => r.name))].sort();
  if (names.length === 0) return undefined;
  const hash = createHash("sha256");
  for (const name of names) hash.update(`${name}=${sealedOf(sql, name) ?? ""}\n`);
  return hash.digest("hex").slice(0, 12);
}
