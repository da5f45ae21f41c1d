import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MemoryLogStore } from "./memory_store.ts";
import { SqliteLogStore } from "./sqlite_store.ts";
import { logStoreContract } from "./store_contract.ts";
import { StoreError, WorkerLogStore } from "./worker_store.ts";

Deno.test("MemoryLogStore keeps the LogStore contract", async (t) => {
  await logStoreContract(t, () => new MemoryLogStore());
});

Deno.test("SqliteLogStore keeps the LogStore contract, across reopens", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "orca-raft-store-" });
  const open: SqliteLogStore[] = [];
  const paths = new Map<SqliteLogStore, string>();
  let n = 0;
  try {
    await logStoreContract(
      t,
      () => {
        const path = `${dir}/log-${n++}.db`;
        const s = new SqliteLogStore(path);
        open.push(s);
        paths.set(s, path);
        return s;
      },
      (store) => {
        const s = store as SqliteLogStore;
        s.close();
        open.splice(open.indexOf(s), 1);
        const again = new SqliteLogStore(paths.get(s)!);
        open.push(again);
        return again;
      },
    );
  } finally {
    for (const s of open) s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WorkerLogStore keeps the LogStore contract, across reopens", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "orca-raft-store-" });
  const open: WorkerLogStore[] = [];
  const paths = new Map<WorkerLogStore, string>();
  const closing: Promise<void>[] = [];
  let n = 0;
  const make = (path: string) => {
    const s = new WorkerLogStore(path);
    open.push(s);
    paths.set(s, path);
    return s;
  };
  try {
    await logStoreContract(t, () => make(`${dir}/log-${n++}.db`), (store) => {
      const s = store as WorkerLogStore;
      open.splice(open.indexOf(s), 1);
      closing.push(s.close()); // every write was awaited, so the reopened copy reads them
      return make(paths.get(s)!);
    });
  } finally {
    await Promise.all([...closing, ...open.map((s) => s.close())]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WorkerLogStore fails every write once one failed, so the driver stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "orca-raft-store-" });
  const s = new WorkerLogStore(`${dir}/log.db`);
  try {
    await s.persist({ entries: [{ index: 1, term: 1, kind: "normal", data: new Uint8Array([1]) }] });
    // The database changes under the worker so that its next write fails, as a failing disk would make it.
    const other = new DatabaseSync(`${dir}/log.db`);
    other.exec("DROP TABLE raft_state");
    other.close();
    await assert.rejects(s.persist({ entries: [], hardState: { term: 2, commit: 1 } }), StoreError);
    await assert.rejects(s.persist({ entries: [], hardState: { term: 3, commit: 1 } }), StoreError);
  } finally {
    await s.close().catch((err) => assert.ok(err instanceof StoreError));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteLogStore opens a store made before client sessions and snapshots, and keeps its entries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "orca-raft-store-" });
  try {
    const path = `${dir}/old.db`;
    const db = new DatabaseSync(path);
    db.exec(`
      CREATE TABLE raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL);
      CREATE TABLE raft_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote TEXT,
        commit_index INTEGER NOT NULL, first INTEGER NOT NULL, snapshot_term INTEGER NOT NULL);
      INSERT INTO raft_state VALUES (1, 2, 'n1', 1, 1, 0);
      INSERT INTO raft_entries VALUES (1, 2, 'normal', x'6869');
    `);
    db.close();
    const s = new SqliteLogStore(path);
    try {
      assert.deepEqual(s.hardState(), { term: 2, vote: "n1", commit: 1 });
      assert.equal(new TextDecoder().decode(s.entries(1, 2)[0].data), "hi");
      assert.equal(s.snapshot(), undefined);
      await s.append([{ index: 2, term: 2, kind: "normal", data: new Uint8Array([1]), client: "c1", seq: 1 }]);
      assert.equal(s.entries(2, 3)[0].client, "c1");
    } finally {
      s.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
