import { MemoryLogStore } from "./memory_store.ts";
import { SqliteLogStore } from "./sqlite_store.ts";
import { logStoreContract } from "./store_contract.ts";

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
