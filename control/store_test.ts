import assert from "node:assert/strict";
import type { ServiceSpec } from "../config/mod.ts";
import { ControlMachine } from "./machine.ts";
import { type DeploySummary, Store, type StoredService } from "./store.ts";

const service = (name: string, version: number): StoredService => ({
  spec: { project: "p", name, env: { N: String(version) }, triggers: [] } as unknown as ServiceSpec,
  version,
  updatedAt: version,
});
const summary: DeploySummary = { created: [], updated: [], removed: [], unchanged: [] };
const versions = (store: Store) => store.services().map((s) => `${s.spec.name}@${s.version}`);

Deno.test("services: read once and kept, frozen; a write, a rollback or a restore shows what is stored", async () => {
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-store-" })}/orca.db`);
  store.transaction(() => store.writeDeploy([service("a", 1)], [], summary, 1));
  assert.deepEqual(versions(store), ["a@1"]);
  const [a] = store.services();
  assert.equal(store.services()[0].spec, a.spec, "the same parsed spec, not parsed again");
  assert.throws(() => ((a.spec as { env: Record<string, string> }).env.N = "x"), TypeError, "nobody changes it");
  store.services().push(service("z", 9)); // each caller gets its own array
  assert.deepEqual(versions(store), ["a@1"]);

  store.transaction(() => store.writeDeploy([service("b", 1), service("a", 2)], [], summary, 2));
  assert.deepEqual(versions(store), ["a@2", "b@1"]);

  // Read inside a transaction that is then rolled back: what it read is not kept.
  assert.throws(() =>
    store.transaction(() => {
      store.writeDeploy([service("c", 1)], [{ project: "p", name: "a" }], summary, 3);
      assert.deepEqual(versions(store), ["b@1", "c@1"]);
      throw new Error("undone");
    }), /undone/);
  assert.deepEqual(versions(store), ["a@2", "b@1"]);

  // A snapshot restored over it (a member catching up) replaces the table: read anew.
  const other = new Store(`${await Deno.makeTempDir({ prefix: "orca-store-" })}/orca.db`);
  const source = new ControlMachine(other);
  other.transaction(() => other.writeDeploy([service("d", 4)], [], summary, 4));
  new ControlMachine(store).restore(source.snapshot());
  assert.deepEqual(versions(store), ["d@4"]);
  store.close();
  other.close();
});
