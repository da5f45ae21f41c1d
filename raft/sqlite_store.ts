/**
 * The durable LogStore: node:sqlite with WAL and synchronous=FULL, so a write
 * is on disk when its transaction commits. An I/O error calls `onFatal`: the
 * node must stop rather than answer from storage it cannot trust.
 *
 * It opens a database of its own, or shares the connection of the state
 * machine's database: its writes then join a transaction already open there
 * (as savepoints), so the driver can store entries and apply them in one
 * transaction, one fsync.
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { checkAppend, checkRange, limitBytes } from "./memory_store.ts";
import type { Entry, HardState, LogStore, Snapshot, StoreWrite } from "./types.ts";
import { decodeConfig, encodeConfig } from "./config.ts";

const schema = `
CREATE TABLE IF NOT EXISTS raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
  client TEXT, seq INTEGER);
CREATE TABLE IF NOT EXISTS raft_snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL,
  config TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS raft_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote TEXT,
  commit_index INTEGER NOT NULL, first INTEGER NOT NULL, snapshot_term INTEGER NOT NULL);
INSERT OR IGNORE INTO raft_state (id, term, vote, commit_index, first, snapshot_term) VALUES (1, 0, NULL, 0, 1, 0);
`;

export class SqliteLogStore implements LogStore {
  readonly #db: DatabaseSync;
  /** Whether the connection is this store's (closed with it), or a database's it shares. */
  readonly #owned: boolean;
  readonly #onFatal: (err: unknown) => void;
  /** Prepared statements by text (preparing one costs about as much as running it). */
  readonly #statements = new Map<string, StatementSync>();
  #first: number;
  #last: number;
  #snapshotTerm: number;
  #hard: HardState;

  /** Opens the database at `path`, or uses `db`, a connection in WAL mode with synchronous=FULL that it shares. */
  constructor(source: string | DatabaseSync, onFatal: (err: unknown) => void = () => {}) {
    this.#owned = typeof source === "string";
    this.#db = typeof source === "string" ? new DatabaseSync(source) : source;
    this.#onFatal = onFatal;
    if (this.#owned) {
      // busy_timeout: another connection (a WorkerLogStore handing over to its worker) may hold the lock a moment.
      this.#db.exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
    }
    this.#db.exec(schema);
    // Stores made before client sessions lack the columns.
    const columns = this.#sql("SELECT name FROM pragma_table_info('raft_entries')").all() as { name: string }[];
    if (!columns.some((c) => c.name === "client")) {
      this.#db.exec(
        "ALTER TABLE raft_entries ADD COLUMN client TEXT; ALTER TABLE raft_entries ADD COLUMN seq INTEGER;",
      );
    }
    const row = this.#sql("SELECT term, vote, commit_index, first, snapshot_term FROM raft_state WHERE id = 1")
      .get() as {
        term: number;
        vote: string | null;
        commit_index: number;
        first: number;
        snapshot_term: number;
      };
    this.#hard = { term: row.term, ...(row.vote !== null && { vote: row.vote }), commit: row.commit_index };
    this.#first = row.first;
    this.#snapshotTerm = row.snapshot_term;
    const last = this.#sql("SELECT MAX(idx) AS last FROM raft_entries").get() as { last: number | null };
    this.#last = last.last ?? this.#first - 1;
  }

  /** Closes the connection if it is this store's own. */
  close(): void {
    if (this.#owned) this.#db.close();
  }

  hardState(): HardState {
    return { ...this.#hard };
  }

  setHardState(state: HardState): Promise<void> {
    this.#write(() => this.#setHardState(state));
    return Promise.resolve();
  }

  firstIndex(): number {
    return this.#first;
  }

  lastIndex(): number {
    return this.#last;
  }

  term(index: number): number | undefined {
    if (index === this.#first - 1) return this.#snapshotTerm;
    if (index < this.#first || index > this.#last) return undefined;
    return (this.#sql("SELECT term FROM raft_entries WHERE idx = ?").get(index) as { term: number }).term;
  }

  entries(from: number, to: number, maxBytes = Infinity): Entry[] {
    checkRange(from, to, this.#first, this.#last);
    const rows = this.#sql(
      "SELECT idx, term, kind, data, client, seq FROM raft_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
    )
      .all(from, to) as {
        idx: number;
        term: number;
        kind: Entry["kind"];
        data: Uint8Array;
        client: string | null;
        seq: number | null;
      }[];
    return limitBytes(
      rows.map((r) => ({
        index: r.idx,
        term: r.term,
        kind: r.kind,
        data: r.data,
        ...(r.client !== null && { client: r.client }),
        ...(r.seq !== null && { seq: r.seq }),
      })),
      maxBytes,
    );
  }

  append(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    this.#transaction(() => this.#append(entries));
    return Promise.resolve();
  }

  compact(upTo: number): Promise<void> {
    if (upTo < this.#first) return Promise.resolve();
    if (upTo > this.#last) throw new RangeError(`cannot compact past the last index ${this.#last}`);
    const term = this.term(upTo)!;
    this.#transaction(() => {
      this.#sql("DELETE FROM raft_entries WHERE idx <= ?").run(upTo);
      this.#sql("UPDATE raft_state SET first = ?, snapshot_term = ? WHERE id = 1").run(upTo + 1, term);
    });
    this.#first = upTo + 1;
    this.#snapshotTerm = term;
    return Promise.resolve();
  }

  snapshot(): Snapshot | undefined {
    const row = this.#sql("SELECT idx, term, config, data FROM raft_snapshot WHERE id = 1").get() as
      | { idx: number; term: number; config: string; data: Uint8Array }
      | undefined;
    if (!row) return undefined;
    return {
      index: row.idx,
      term: row.term,
      config: decodeConfig(new TextEncoder().encode(row.config)),
      data: row.data,
    };
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.#transaction(() => this.#saveSnapshot(snapshot));
    return Promise.resolve();
  }

  persist(write: StoreWrite): Promise<void> {
    this.persistNow(write);
    return Promise.resolve();
  }

  /** Writes at once: durable on return, or, inside a transaction of the shared connection, when that commits. */
  persistNow(write: StoreWrite): void {
    this.#transaction(() => {
      if (write.snapshot) this.#saveSnapshot(write.snapshot);
      if (write.entries.length > 0) this.#append(write.entries);
      if (write.hardState) this.#setHardState(write.hardState);
    });
  }

  // The steps below run inside a transaction: should it fail, the store stops (onFatal), so what they already
  // changed in memory does not matter.

  #setHardState(state: HardState): void {
    this.#sql("UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 1").run(
      state.term,
      state.vote ?? null,
      state.commit,
    );
    this.#hard = { ...state };
  }

  #append(entries: readonly Entry[]): void {
    checkAppend(entries, this.#first, this.#last);
    if (entries[0].index <= this.#last) this.#sql("DELETE FROM raft_entries WHERE idx >= ?").run(entries[0].index);
    const insert = this.#sql(
      "INSERT INTO raft_entries (idx, term, kind, data, client, seq) VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const e of entries) insert.run(e.index, e.term, e.kind, e.data, e.client ?? null, e.seq ?? null);
    this.#last = entries[entries.length - 1].index;
  }

  #saveSnapshot(snapshot: Snapshot): void {
    const saved = this.#sql("SELECT idx FROM raft_snapshot WHERE id = 1").get() as { idx: number } | undefined;
    if (saved && snapshot.index <= saved.idx) return;
    const continues = snapshot.index >= this.#first - 1 && this.term(snapshot.index) === snapshot.term;
    this.#sql("DELETE FROM raft_entries WHERE idx <= ? OR ?").run(snapshot.index, continues ? 0 : 1);
    this.#sql("UPDATE raft_state SET first = ?, snapshot_term = ? WHERE id = 1").run(
      snapshot.index + 1,
      snapshot.term,
    );
    this.#sql("INSERT OR REPLACE INTO raft_snapshot (id, idx, term, config, data) VALUES (1, ?, ?, ?, ?)").run(
      snapshot.index,
      snapshot.term,
      new TextDecoder().decode(encodeConfig(snapshot.config)),
      snapshot.data,
    );
    this.#first = snapshot.index + 1;
    this.#snapshotTerm = snapshot.term;
    if (!continues || this.#last < this.#first) this.#last = snapshot.index;
  }

  /** The prepared statement for `text`, made once. */
  #sql(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (!statement) this.#statements.set(text, statement = this.#db.prepare(text));
    return statement;
  }

  /**
   * Runs `fn` in a transaction, or inside the one open on the connection (it commits with that one; a failure here
   * is fatal and fails that one whole, so no savepoint is needed).
   */
  #transaction(fn: () => void): void {
    this.#write(() => {
      if (this.#db.isTransaction) return fn();
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        fn();
        this.#db.exec("COMMIT");
      } catch (err) {
        this.#db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  #write(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onFatal(err);
      throw err;
    }
  }
}
