/**
 * The node's store: one SQLite database (WAL, synchronous=FULL) holding the
 * desired state (services), deploy history and uploaded modules. Every
 * change is one transaction. An I/O error on write is fatal: the process
 * must not go on with a store it cannot trust.
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";

export interface StoredService {
  spec: ServiceSpec;
  /** Bumped on every change of the service. */
  version: number;
  updatedAt: number;
}

export interface DeployRecord {
  id: number;
  at: number;
  summary: DeploySummary;
}

export interface DeploySummary {
  created: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  /** Who or what made it: `orca deploy (user@host)`, a rollback, ... */
  origin?: string;
  /** Services it started a canary of (`[service.rollout] strategy = "canary"`), not in `updated`. */
  canary?: string[];
  /** A canary's end: promoted to be its service's version, or rolled back. */
  rollout?: { service: string; version: number; outcome: "promoted" | "rolled_back" };
}

export interface StoreOptions {
  /** Called on a write that failed with an I/O error; should end the process. */
  onFatal?: (err: unknown) => never;
  now?: () => number;
}

const schema = `
CREATE TABLE IF NOT EXISTS modules (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS services (
  project TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
  spec TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (project, name));
CREATE TABLE IF NOT EXISTS deploys (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, summary TEXT NOT NULL);
`;

export class Store {
  /** The connection, shared by the stores of other subsystems (queues, runs). */
  readonly db: DatabaseSync;
  /** The database file (others may open it to read, as a snapshot does). */
  readonly path: string;
  readonly #opts: StoreOptions;
  readonly #statements = new Map<string, StatementSync>();
  readonly #now: () => number;
  /**
   * The services as last read, frozen: a deploy reads them four times (its checks, the state machine, the
   * convergence, certificates), each a query and a JSON parse of every spec. A write to the table forgets them
   * (`forgetServices`), and so does a rollback (what was read inside may be undone).
   */
  #services?: readonly StoredService[];

  constructor(path: string, opts: StoreOptions = {}) {
    this.#opts = opts;
    this.path = path;
    this.#now = opts.now ?? Date.now;
    try {
      this.db = new DatabaseSync(path);
      this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
      this.db.exec(schema);
    } catch (err) {
      throw new OrcaError("internal", `cannot open the store: ${(err as Error).message}`, {
        where: path,
        hint: "check that ORCA_HOME is writable and not used by another orca server",
        cause: err,
      });
    }
  }

  close(): void {
    this.db.close();
  }

  /** A prepared statement for `text`, made once (preparing costs about as much as running a simple one). */
  sql(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (!statement) this.#statements.set(text, statement = this.db.prepare(text));
    return statement;
  }

  hasModule(hash: string): boolean {
    return this.#has("modules", hash);
  }

  getModule(hash: string): Uint8Array {
    return this.#get("modules", hash);
  }

  putModule(hash: string, bytes: Uint8Array): void {
    this.#put("modules", hash, bytes);
  }

  /** Files of `[service.wasm] files` mounts, content-addressed like modules. */
  hasBlob(hash: string): boolean {
    return this.#has("blobs", hash);
  }

  getBlob(hash: string): Uint8Array {
    return this.#get("blobs", hash);
  }

  putBlob(hash: string, bytes: Uint8Array): void {
    this.#put("blobs", hash, bytes);
  }

  #has(table: "modules" | "blobs", hash: string): boolean {
    return this.sql(`SELECT 1 FROM ${table} WHERE hash = ?`).get(hash) !== undefined;
  }

  #get(table: "modules" | "blobs", hash: string): Uint8Array {
    const row = this.sql(`SELECT bytes FROM ${table} WHERE hash = ?`).get(hash) as
      | { bytes: Uint8Array }
      | undefined;
    if (!row) {
      throw new OrcaError("not_found", `${table === "modules" ? "module" : "file"} ${hash} is not in the store`);
    }
    return row.bytes;
  }

  #put(table: "modules" | "blobs", hash: string, bytes: Uint8Array): void {
    this.write(() =>
      this.sql(`INSERT OR IGNORE INTO ${table} (hash, bytes, created_at) VALUES (?, ?, ?)`).run(
        hash,
        bytes,
        this.#now(),
      )
    );
  }

  /** Every service's current version, by project and name; the specs are frozen (shared by every caller). */
  services(): StoredService[] {
    if (this.#services) return [...this.#services];
    const rows = this.sql("SELECT spec, version, updated_at FROM services ORDER BY project, name").all() as {
      spec: string;
      version: number;
      updated_at: number;
    }[];
    const services = rows.map((r) =>
      Object.freeze({
        spec: deepFreeze(JSON.parse(r.spec) as ServiceSpec),
        version: r.version,
        updatedAt: r.updated_at,
      })
    );
    this.#services = services;
    return [...services];
  }

  /** Called by whatever writes the services table (here, a snapshot's restore) or rolls a write back. */
  forgetServices(): void {
    this.#services = undefined;
  }

  /** Writes a deploy made at `at` (inside the caller's transaction: the state machine's); returns its id. */
  writeDeploy(
    upserts: StoredService[],
    removals: { project: string; name: string }[],
    summary: DeploySummary,
    at: number,
  ): number {
    this.forgetServices();
    return this.write(() => {
      const upsert = this.sql(
        `INSERT INTO services (project, name, version, spec, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (project, name) DO UPDATE SET version = excluded.version, spec = excluded.spec, updated_at = excluded.updated_at`,
      );
      for (const s of upserts) {
        upsert.run(s.spec.project, s.spec.name, s.version, JSON.stringify(s.spec), s.updatedAt);
      }
      const remove = this.sql("DELETE FROM services WHERE project = ? AND name = ?");
      for (const r of removals) remove.run(r.project, r.name);
      const { lastInsertRowid } = this.sql("INSERT INTO deploys (at, summary) VALUES (?, ?)").run(
        at,
        JSON.stringify(summary),
      );
      return Number(lastInsertRowid);
    });
  }

  /** Runs `fn` in one write transaction; inside one already open, in a savepoint of it (committed with it). */
  transaction<T>(fn: () => T): T {
    return this.write(() => {
      const nested = this.db.isTransaction;
      this.db.exec(nested ? "SAVEPOINT store" : "BEGIN IMMEDIATE");
      try {
        const result = fn();
        this.db.exec(nested ? "RELEASE store" : "COMMIT");
        return result;
      } catch (err) {
        this.forgetServices();
        this.db.exec(nested ? "ROLLBACK TO store; RELEASE store" : "ROLLBACK");
        throw err;
      }
    });
  }

  deploys(limit = 20): DeployRecord[] {
    const rows = this.sql("SELECT id, at, summary FROM deploys ORDER BY id DESC LIMIT ?").all(limit) as {
      id: number;
      at: number;
      summary: string;
    }[];
    return rows.map((r) => ({ id: r.id, at: r.at, summary: JSON.parse(r.summary) as DeploySummary }));
  }

  /** Runs a write; an I/O error on it is fatal (see `StoreOptions.onFatal`). */
  write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const code = (err as { errcode?: number }).errcode;
      // SQLITE_IOERR (10), SQLITE_CORRUPT (11), SQLITE_FULL (13): nothing after this can be trusted.
      if (code !== undefined && [10, 11, 13].includes(code & 0xff) && this.#opts.onFatal) this.#opts.onFatal(err);
      throw err;
    }
  }
}

/** `value` and everything in it, frozen. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
