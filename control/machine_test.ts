import assert from "node:assert/strict";
import type { Entry } from "../raft/mod.ts";
import { type ControlCommand, ControlMachine, encodeCommand } from "./machine.ts";
import { Store } from "./store.ts";

const entry = (index: number, command: ControlCommand | string): Entry => ({
  index,
  term: 1,
  kind: "normal",
  data: typeof command === "string" ? new TextEncoder().encode(command) : encodeCommand(command),
});

Deno.test("a command that fails is undone alone and answered as failed; the entries around it apply", async () => {
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-machine-" })}/orca.db`);
  const machine = new ControlMachine(store);
  const publish = (bodies: string[]): ControlCommand => ({
    type: "queue-publish",
    topic: "t",
    bodies,
    meta: {},
    at: 1,
  });
  const results = machine.applyAll([
    entry(1, publish(["YQ=="])),
    entry(2, publish(["YQ==", "not base64 !"])), // fails after its first message is written: undone whole
    entry(3, "{not json"),
    entry(4, publish(["Yg=="])),
  ]);
  assert.deepEqual(results.map((r) => r.ok), [true, false, false, true]);
  assert.deepEqual(results[0], { ok: true, value: [1] });
  assert.equal(machine.applied(), 4, "the failed entries are applied (as failures) like any other");
  const kept = machine.snapshot();
  const state = JSON.parse(new TextDecoder().decode(kept));
  assert.deepEqual(state.queues.messages.map((m: { body: string }) => atob(m.body)), ["a", "b"]);
  store.close();
});

Deno.test("a snapshot made on a worker is the state at the index it names, while more is applied meanwhile", async () => {
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-machine-" })}/orca.db`);
  const machine = new ControlMachine(store);
  const publish = (n: number): ControlCommand => ({
    type: "queue-publish",
    topic: "t",
    bodies: Array.from({ length: 100 }, (_, i) => btoa(`m${n}-${i}`)),
    meta: {},
    at: 1,
  });
  let index = 0;
  for (; index < 200; index++) machine.applyAll([entry(index + 1, publish(index))]);
  const synchronous = new TextDecoder().decode(machine.snapshot());
  const taking = machine.snapshotAsync();
  // The server goes on while the worker reads: each entry applied here is a commit the worker's read may or may
  // not see, never half of one.
  for (; index < 260; index++) {
    machine.applyAll([entry(index + 1, publish(index))]);
    await new Promise((r) => setTimeout(r, 1));
  }
  const taken = await taking;
  const state = JSON.parse(new TextDecoder().decode(taken.data));
  assert.ok(taken.index >= 200 && taken.index <= 260, `taken at ${taken.index}`);
  assert.equal(state.applied.index, taken.index);
  assert.equal(state.queues.messages.length, taken.index * 100, "exactly the messages of the entries through it");
  if (taken.index === 200) assert.equal(new TextDecoder().decode(taken.data), synchronous);

  // Restored elsewhere, it is that state.
  const other = new ControlMachine(new Store(`${await Deno.makeTempDir({ prefix: "orca-machine-" })}/orca.db`));
  other.restore(taken.data);
  assert.equal(other.applied(), taken.index);
  assert.equal(JSON.parse(new TextDecoder().decode(other.snapshot())).queues.messages.length, taken.index * 100);
  store.close();
});

Deno.test("a snapshot that cannot be made on a worker fails clearly (the driver then makes them here)", async () => {
  const machine = new ControlMachine(new Store(":memory:"));
  await assert.rejects(() => machine.snapshotAsync(), /snapshot failed/);
});

Deno.test("the registry keeps each server's facts and drain flag, through a snapshot, and upgrades an old table", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-machine-" });
  // A store from before the registry held facts.
  const old = new Store(`${home}/orca.db`);
  old.db.exec("CREATE TABLE members (id TEXT PRIMARY KEY, address TEXT NOT NULL, at INTEGER NOT NULL)");
  old.db.exec("INSERT INTO members VALUES ('n0', '127.0.0.9:6880', 5)");
  old.close();
  const store = new Store(`${home}/orca.db`);
  const machine = new ControlMachine(store);
  assert.deepEqual(machine.members(), [{ id: "n0", address: "127.0.0.9:6880", at: 5, drain: false }]);
  const facts = { labels: { zone: "eu-1" }, capacity: { memory: 1024, cpuMillis: 2000 }, gpus: [] };
  machine.applyAll([
    entry(1, { type: "member", id: "n1", address: "127.0.0.1:6880", at: 10, facts }),
    entry(2, { type: "member", id: "n1", address: "127.0.0.1:7000", at: 11 }), // facts kept when not sent
  ]);
  const n1 = machine.members().find((m) => m.id === "n1");
  assert.deepEqual(n1, { id: "n1", address: "127.0.0.1:7000", at: 11, facts, drain: false });
  const other = new ControlMachine(new Store(`${await Deno.makeTempDir({ prefix: "orca-machine-" })}/orca.db`));
  other.restore(machine.snapshot());
  assert.deepEqual(other.members(), machine.members());
  store.close();
});
