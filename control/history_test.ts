import assert from "node:assert/strict";
import { readService } from "../config/mod.ts";
import type { Entry } from "../raft/mod.ts";
import { collectUnused, KEPT_VERSIONS, readHistory, UnusedCollector, UPLOAD_GRACE_MS, versionsOf } from "./history.ts";
import { type ControlCommand, ControlMachine, encodeCommand } from "./machine.ts";
import { planRollback } from "./rollback.ts";
import { Store } from "./store.ts";

const hash = (n: number) => n.toString(16).padStart(64, "0");
const spec = (n: number, name = "api") =>
  readService(
    { name, module: "x.wasm", module_hash: hash(n), triggers: [`http:/${name}`] },
    { file: "t" },
    "shop",
    [],
    {
      api: true,
    },
  );
const deploy = (index: number, n: number, at: number): Entry => {
  const command: ControlCommand = {
    type: "deploy",
    at,
    upserts: [{ spec: spec(n), version: n, updatedAt: at }],
    removals: [],
    summary: { created: n === 1 ? ["shop/api"] : [], updated: n === 1 ? [] : ["shop/api"], removed: [], unchanged: [] },
  };
  return { index, term: 1, kind: "normal", data: encodeCommand(command) };
};

Deno.test("history keeps the last 10 versions of a service; their modules are kept, older ones collected", async () => {
  let now = 1_000;
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-history-" })}/orca.db`, { now: () => now });
  const machine = new ControlMachine(store);
  const sql = (text: string) => store.sql(text);
  for (let n = 1; n <= 12; n++) {
    store.putModule(hash(n), new Uint8Array([n]));
    machine.applyAll([deploy(n, n, 1_000 + n)]);
  }
  store.putModule(hash(99), new Uint8Array([99])); // uploaded, not deployed (yet)
  const versions = versionsOf(sql, "shop/api");
  assert.equal(versions.length, KEPT_VERSIONS);
  assert.deepEqual(versions.map((v) => v.version), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
  assert.equal(versions[0].spec.module_hash, hash(12));
  const rows = readHistory(sql, "shop/api", 5);
  assert.deepEqual(rows.map((r) => [r.deploy, r.change, r.version, r.artifact]), [
    [12, "updated", 12, hash(12)],
    [11, "updated", 11, hash(11)],
    [10, "updated", 10, hash(10)],
    [9, "updated", 9, hash(9)],
    [8, "updated", 8, hash(8)],
  ]);
  // Deploys past the versions kept are still listed, without a version.
  assert.deepEqual(readHistory(sql, "shop/api", 50).at(-1), {
    deploy: 1,
    at: 1_001,
    service: "shop/api",
    change: "created",
  });

  // Nothing uploaded within the grace period goes; past it, what no kept version uses does.
  assert.equal(collectUnused(store, 999), 0);
  now = 10_000;
  assert.equal(collectUnused(store, 5_000), 3);
  assert.ok(!store.hasModule(hash(1)) && !store.hasModule(hash(2)) && !store.hasModule(hash(99)));
  for (let n = 3; n <= 12; n++) assert.ok(store.hasModule(hash(n)), `module of v${n} kept`);

  // A snapshot carries the history to a member that installs it.
  const other = new Store(`${await Deno.makeTempDir({ prefix: "orca-history-" })}/orca.db`);
  new ControlMachine(other).restore(machine.snapshot());
  assert.deepEqual(
    versionsOf((text) => other.sql(text), "shop/api").map((v) => v.version),
    versions.map((v) => v.version),
  );

  // A rollback plans the project with that one spec replaced.
  const plan = planRollback(store, "shop/api");
  assert.equal(plan.target.version, 11);
  assert.equal(plan.from, 12);
  assert.deepEqual(Object.keys(plan.request.projects), ["shop"]);
  assert.equal(planRollback(store, "shop/api", 5).target.version, 5);
  assert.throws(() => planRollback(store, "shop/api", 2), /the version deploy 2 left of shop\/api is not kept/);
  assert.throws(() => planRollback(store, "shop/api", 12), /already runs what version 12/);
  store.close();
  other.close();
});

Deno.test("unused modules are collected once, a while after the deploys that asked; stopped, never", async () => {
  let now = 1_000;
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-history-" })}/orca.db`, { now: () => now });
  const machine = new ControlMachine(store);
  store.putModule(hash(1), new Uint8Array([1]));
  machine.applyAll([deploy(1, 1, 1_001)]);
  store.putModule(hash(2), new Uint8Array([2])); // uploaded, never deployed
  now += UPLOAD_GRACE_MS + 1;
  const lines: string[] = [];
  const collector = new UnusedCollector(store, () => now, (line) => lines.push(line));
  for (let i = 0; i < 5; i++) collector.soon(20);
  assert.ok(store.hasModule(hash(2)), "nothing goes on the deploy's path");
  await new Promise((r) => setTimeout(r, 80));
  assert.ok(!store.hasModule(hash(2)) && store.hasModule(hash(1)));
  assert.deepEqual(lines, ["collected 1 module(s) and file(s) no kept version uses"]);

  store.putModule(hash(3), new Uint8Array([3]));
  now += UPLOAD_GRACE_MS + 1;
  collector.soon(20);
  collector.stop();
  await new Promise((r) => setTimeout(r, 80));
  assert.ok(store.hasModule(hash(3)), "a stopped collector collects nothing");
  store.close();
});
