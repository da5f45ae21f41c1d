/**
 * The control plane's log on real SQLite files: deploys are committed and
 * applied once, survive a restart without being applied twice, and the
 * desired state can be rebuilt from the log alone (snapshot, then entries).
 */

import assert from "node:assert/strict";
import { readService } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { SqliteLogStore } from "../raft/mod.ts";
import { ControlLog } from "./raft_log.ts";
import { type DeploySummary, Store, type StoredService } from "./store.ts";

const fatal = (err: unknown) => {
  throw err;
};

function service(name: string, version: number): StoredService {
  const spec = readService({ name, image: "example/app:1", triggers: [`http:/${name}`] }, { file: "test" }, "shop");
  return { spec, version, updatedAt: 1_000 + version };
}

async function deploy(log: ControlLog, name: string, version: number): Promise<number> {
  const summary: DeploySummary = { created: [`shop/${name}`], updated: [], removed: [], unchanged: [] };
  return await log.propose({
    type: "deploy",
    at: 5_000 + version,
    upserts: [service(name, version)],
    removals: [],
    summary,
  }) as number;
}

/** Opens the log of `home` over `store`, as server `id` starting or joining a cluster. */
function openLog(home: string, store: Store, mode: "bootstrap" | "join", id = "n1", snapshotEvery?: number) {
  const token = "a-test-token-0123456789";
  return ControlLog.open({ home, id, store, token, mode, onFatal: fatal, ...(snapshotEvery && { snapshotEvery }) });
}

/** Waits for the log to be compacted at a snapshot through `index` at least (snapshots are made on a worker). */
async function snapshotted(log: ControlLog, index: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (log.status().snapshot < index) {
    if (Date.now() > end) assert.fail(`no snapshot through ${index} (at ${log.status().snapshot})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function open(home: string, snapshotEvery?: number) {
  const store = new Store(`${home}/orca.db`);
  const log = await openLog(home, store, "bootstrap", "n1", snapshotEvery);
  await log.ready(5_000);
  return { store, log, close: async () => (await log.close(), store.close()) };
}

Deno.test("a lone server commits deploys through its log and applies each once, across restarts", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  let node = await open(home);
  const first = node.log.status();
  assert.equal(first.role, "leader");
  assert.equal(first.leader, "n1");
  assert.deepEqual(first.voters, ["n1"]);
  assert.equal(await deploy(node.log, "web", 1), 1);
  assert.equal(await deploy(node.log, "api", 1), 2);
  const applied = node.log.status().applied;
  assert.ok(applied >= 3, `a no-op and two deploys applied, got ${applied}`);
  await node.close();

  node = await open(home);
  assert.ok(node.log.status().applied >= applied);
  assert.deepEqual(node.store.services().map((s) => s.spec.name), ["api", "web"]);
  assert.deepEqual(node.store.deploys().map((d) => d.id), [2, 1], "nothing applied twice after the restart");
  assert.equal(node.store.deploys()[0].at, 5_001, "the proposer's time, not the applier's");
  assert.equal(await deploy(node.log, "web", 2), 3);
  await node.close();
});

Deno.test("the desired state is rebuilt from the log alone: snapshot, then the entries after it", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  let node = await open(home, 4);
  for (let v = 1; v <= 10; v++) await deploy(node.log, `svc${v}`, 1);
  const before = { services: node.store.services(), deploys: node.store.deploys() };
  await snapshotted(node.log, 4);
  await node.close();

  // The applied state is gone (its tables emptied, the applied index with them): the log alone brings it back.
  const store = new Store(`${home}/orca.db`);
  store.db.exec("DELETE FROM services; DELETE FROM deploys; DELETE FROM raft_applied; DELETE FROM members;");
  store.close();
  node = await open(home, 4);
  assert.deepEqual(node.store.services(), before.services);
  assert.deepEqual(node.store.deploys(), before.deploys);
  assert.equal(await deploy(node.log, "svc11", 1), 11);
  await node.close();
});

/** Moves the log out of orca.db into raft.db, where builds before the one-database layout kept it. */
function moveLogToLegacyFile(home: string): void {
  const store = new Store(`${home}/orca.db`);
  const shared = new SqliteLogStore(store.db);
  const legacy = new SqliteLogStore(`${home}/raft.db`);
  const first = shared.firstIndex();
  legacy.persistNow({
    snapshot: shared.snapshot(),
    entries: shared.entries(first, shared.lastIndex() + 1),
    hardState: shared.hardState(),
  });
  legacy.close();
  store.db.exec(`DELETE FROM raft_entries; DELETE FROM raft_snapshot;
    UPDATE raft_state SET term = 0, vote = NULL, commit_index = 0, first = 1, snapshot_term = 0;`);
  store.close();
}

Deno.test("a log kept in raft.db by an older build is moved into orca.db once, nothing lost", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  let node = await open(home, 4);
  for (let v = 1; v <= 6; v++) await deploy(node.log, `svc${v}`, 1);
  const before = node.log.status();
  await node.close();
  moveLogToLegacyFile(home);

  assert.equal(await ControlLog.exists(home, new Store(`${home}/orca.db`)), true);
  node = await open(home, 4);
  assert.equal(node.log.status().term, before.term + 1, "the imported term, and the election at start");
  assert.ok(node.log.status().snapshot >= before.snapshot, "the imported snapshot");
  assert.equal(node.store.services().length, 6);
  assert.equal(await deploy(node.log, "svc7", 1), 7, "deploy ids go on from the imported log");
  await node.close();
  await Deno.stat(`${home}/raft.db.imported`);
  await assert.rejects(() => Deno.stat(`${home}/raft.db`), Deno.errors.NotFound);
});

Deno.test("a raft.db next to a log already in orca.db is refused with a clear error, nothing changed", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  const node = await open(home);
  await deploy(node.log, "web", 1);
  await node.close();
  const stray = new SqliteLogStore(`${home}/raft.db`);
  await stray.persist({ entries: [], hardState: { term: 3, commit: 0 } });
  stray.close();

  const store = new Store(`${home}/orca.db`);
  await assert.rejects(
    () => openLog(home, store, "bootstrap"),
    (err: unknown) => err instanceof OrcaError && /two Raft logs/.test(err.message) && err.where === home,
  );
  assert.deepEqual(store.services().map((s) => s.spec.name), ["web"], "the applied state is left alone");
  store.close();
  await Deno.stat(`${home}/raft.db`);
});

Deno.test("a restart with the applied state far past the last snapshot starts and goes on (no snapshot taken too far)", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  let node = await open(home, 1000);
  for (let v = 1; v <= 30; v++) await deploy(node.log, `svc${v}`, 1);
  await node.close();
  // As if the server died between crossing the snapshot threshold and taking the snapshot.
  node = await open(home, 20);
  assert.equal(await deploy(node.log, "after", 1), 31);
  await snapshotted(node.log, 1);
  await node.close();
  node = await open(home, 20);
  assert.equal(node.store.services().length, 31);
  await node.close();
});

Deno.test("a log with nothing in it (a join that never heard from a leader) is no membership", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-log-" });
  const store = new Store(`${home}/orca.db`);
  assert.equal(await ControlLog.exists(home, store), false, "a new store");
  const joining = await openLog(home, store, "join", "n2");
  await joining.close();
  assert.equal(await ControlLog.exists(home, store), false, "a log, but no term, entry or snapshot");
  store.close();
  const node = await open(home);
  assert.equal(await ControlLog.exists(home, node.store), true);
  await node.close();
});
