/**
 * Deploy history: every version a deploy made of a service, with its spec,
 * kept for the last KEPT_VERSIONS versions of each service. The state
 * machine writes it with the deploy (so every member has it, and snapshots
 * carry it); `orca history` lists it and `orca rollback` deploys one of its
 * specs again. Module and file bytes of the versions kept are what the store
 * keeps (`referencedHashes`); older ones are collected.
 */

import type { StatementSync } from "node:sqlite";
import type { ServiceSpec } from "../config/mod.ts";
import { splitKey } from "./deploy_request.ts";
import type { DeploySummary, Store, StoredService } from "./store.ts";

/** The rows as a snapshot carries them. */
export type VersionRows = {
  project: string;
  name: string;
  version: number;
  deploy: number;
  at: number;
  spec: string;
}[];

/** Versions of each service kept for rollback (their modules and files with them). */
export const KEPT_VERSIONS = 10;
/** An upload younger than this is kept though nothing uses it yet: the deploy it is for may be under way. */
export const UPLOAD_GRACE_MS = 60 * 60_000;

export const HISTORY_SCHEMA = `
CREATE TABLE IF NOT EXISTS service_versions (
  project TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, deploy INTEGER NOT NULL,
  at INTEGER NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (project, name, version));
`;

type Sql = (text: string) => StatementSync;

/** One version of a service, as a deploy made it. */
export interface VersionRecord {
  service: string;
  version: number;
  /** The deploy that made it. */
  deploy: number;
  at: number;
  spec: ServiceSpec;
}

/** A row of `orca history`: a deploy and what it did to each service it changed. */
export interface HistoryEntry {
  deploy: number;
  at: number;
  /** Who or what made it: `orca deploy (user@host)`, `orca rollback ... (user@host)`, ... */
  origin?: string;
  service: string;
  /** `canary`: it started as a canary; `promoted`, `rolled_back`: how that canary ended. */
  change: "created" | "updated" | "removed" | "canary" | "promoted" | "rolled_back";
  version?: number;
  /** The module's hash (Wasm) or the image (containers) of that version. */
  artifact?: string;
}

/** Records the versions a deploy made, and forgets those past the last KEPT_VERSIONS of each service. */
export function writeVersions(sql: Sql, deploy: number, upserts: StoredService[], at: number): void {
  const insert = sql(
    "INSERT OR REPLACE INTO service_versions (project, name, version, deploy, at, spec) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const trim = sql("DELETE FROM service_versions WHERE project = ? AND name = ? AND version <= ?");
  for (const s of upserts) {
    insert.run(s.spec.project, s.spec.name, s.version, deploy, at, JSON.stringify(s.spec));
    trim.run(s.spec.project, s.spec.name, s.version - KEPT_VERSIONS);
  }
}

export function dumpVersions(sql: Sql): VersionRows {
  return sql("SELECT project, name, version, deploy, at, spec FROM service_versions ORDER BY project, name, version")
    .all() as VersionRows;
}

/** Replaces every kept version with `rows` (a snapshot's). */
export function loadVersions(sql: Sql, rows: VersionRows): void {
  sql("DELETE FROM service_versions").run();
  const insert = sql(
    "INSERT INTO service_versions (project, name, version, deploy, at, spec) VALUES (?, ?, ?, ?, ?, ?)",
  );
  for (const v of rows) insert.run(v.project, v.name, v.version, v.deploy, v.at, v.spec);
}

/** The highest version of `service` recorded (0: none): a new version is numbered past it, never reusing one. */
export function highestVersion(sql: Sql, service: string): number {
  const row = sql("SELECT MAX(version) AS v FROM service_versions WHERE project = ? AND name = ?").get(
    ...splitKey(service),
  ) as { v: number | null } | undefined;
  return row?.v ?? 0;
}

/** The versions kept of `service` (`project/name`), newest first. */
export function versionsOf(sql: Sql, service: string): VersionRecord[] {
  const rows = sql(
    "SELECT version, deploy, at, spec FROM service_versions WHERE project = ? AND name = ? ORDER BY version DESC",
  ).all(...splitKey(service)) as {
    version: number;
    deploy: number;
    at: number;
    spec: string;
  }[];
  return rows.map((r) => ({ service, version: r.version, deploy: r.deploy, at: r.at, spec: JSON.parse(r.spec) }));
}

/**
 * The deploys that changed `service` (or any service), newest first, at most `limit` of them: for each, what it did
 * to each service and with which module or image.
 */
export function readHistory(sql: Sql, service: string | undefined, limit: number): HistoryEntry[] {
  const deploys = sql("SELECT id, at, summary FROM deploys ORDER BY id DESC").iterate() as Iterable<
    { id: number; at: number; summary: string }
  >;
  const version = sql(
    "SELECT version, spec FROM service_versions WHERE project = ? AND name = ? AND deploy = ?",
  );
  const byVersion = sql("SELECT version, spec FROM service_versions WHERE project = ? AND name = ? AND version = ?");
  const out: HistoryEntry[] = [];
  for (const d of deploys) {
    const summary = JSON.parse(d.summary) as DeploySummary;
    const mine = (key: string) => service === undefined || key === service;
    const changes: { key: string; change: HistoryEntry["change"]; version?: number }[] = [
      ...(["created", "updated", "removed"] as const).flatMap((change) =>
        summary[change].filter(mine).map((key) => ({ key, change }))
      ),
      ...(summary.canary ?? []).filter(mine).map((key) => ({ key, change: "canary" as const })),
    ];
    const end = summary.rollout;
    if (end && mine(end.service)) changes.push({ key: end.service, change: end.outcome, version: end.version });
    for (const { key, change, version: ended } of changes) {
      const row = (version.get(...splitKey(key), d.id) ??
        (ended === undefined ? undefined : byVersion.get(...splitKey(key), ended))) as
          | { version: number; spec: string }
          | undefined;
      const spec = row ? JSON.parse(row.spec) as ServiceSpec : undefined;
      const artifact = spec?.module_hash ?? spec?.image;
      out.push({
        deploy: d.id,
        at: d.at,
        ...(summary.origin && { origin: summary.origin }),
        service: key,
        change,
        ...((row || ended !== undefined) && { version: row?.version ?? ended }),
        ...(artifact && { artifact }),
      });
    }
    if (out.length >= limit) break;
  }
  return out.slice(0, limit);
}

/** Every module and file hash a kept version or a deployed service uses: what the store must keep. */
export function referencedHashes(sql: Sql): { modules: Set<string>; blobs: Set<string> } {
  const modules = new Set<string>();
  const blobs = new Set<string>();
  const specs = [
    ...sql("SELECT spec FROM service_versions").all(),
    ...sql("SELECT spec FROM services").all(),
  ] as { spec: string }[];
  for (const { spec } of specs) {
    const s = JSON.parse(spec) as ServiceSpec;
    if (s.module_hash) modules.add(s.module_hash);
    for (const mount of Object.values(s.wasm?.files ?? {})) {
      for (const hash of Object.values(mount.tree ?? {})) blobs.add(hash);
    }
  }
  return { modules, blobs };
}

/**
 * Deletes the modules and files that no deployed service and no kept version uses, uploaded before `before` (one
 * uploaded since may be for a deploy under way). Returns how many went.
 */
export function collectUnused(store: Store, before: number): number {
  const sql = (text: string) => store.sql(text);
  const keep = referencedHashes(sql);
  let removed = 0;
  store.transaction(() => {
    for (const [table, kept] of [["modules", keep.modules], ["blobs", keep.blobs]] as const) {
      const old = sql(`SELECT hash FROM ${table} WHERE created_at < ?`).all(before) as { hash: string }[];
      const drop = sql(`DELETE FROM ${table} WHERE hash = ?`);
      for (const { hash } of old) {
        if (kept.has(hash)) continue;
        drop.run(hash);
        removed++;
      }
    }
  });
  return removed;
}

/**
 * Collects what no version uses a while after deploys (one collection for every deploy of the last second, off
 * their path: it reads every kept version's spec, which a deploy should not wait for).
 */
export class UnusedCollector {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  #timer?: ReturnType<typeof setTimeout>;

  constructor(store: Store, now: () => number, log: (line: string) => void) {
    this.#store = store;
    this.#now = now;
    this.#log = log;
  }

  /** Asks for a collection within `afterMs` (one already asked for covers this one). */
  soon(afterMs = 1_000): void {
    if (this.#timer !== undefined) return;
    const timer = this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        const collected = collectUnused(this.#store, this.#now() - UPLOAD_GRACE_MS);
        if (collected > 0) this.#log(`collected ${collected} module(s) and file(s) no kept version uses`);
      } catch (err) {
        this.#log(`unused modules and files not collected: ${(err as Error).message}`);
      }
    }, afterMs);
    Deno.unrefTimer(timer);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
