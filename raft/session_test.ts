import assert from "node:assert/strict";
import { SessionTable } from "./session.ts";

Deno.test("a retried write runs once and gets the first answer back", () => {
  const t = new SessionTable<string>();
  let runs = 0;
  const write = () => `run ${++runs}`;
  assert.deepEqual(t.apply("c1", 1, write), { status: "applied", result: "run 1" });
  assert.deepEqual(t.apply("c1", 1, write), { status: "duplicate", result: "run 1" });
  assert.deepEqual(t.apply("c2", 1, write), { status: "applied", result: "run 2" }, "sessions are per client");
  assert.deepEqual(t.apply("c1", 2, write), { status: "applied", result: "run 3" });
  assert.deepEqual(t.apply("c1", 1, write), { status: "stale" }, "older than the latest: nobody waits for it");
  assert.equal(runs, 3);
  assert.deepEqual(t.last("c1"), { seq: 2, result: "run 3" });
});

Deno.test("sessions survive a snapshot: records in, the same decisions out", () => {
  const t = new SessionTable<number>();
  t.apply("b", 4, () => 40);
  t.apply("a", 7, () => 70);
  const records = t.records();
  assert.deepEqual(records, [{ client: "a", seq: 7, result: 70 }, { client: "b", seq: 4, result: 40 }]);
  const restored = new SessionTable(records);
  assert.deepEqual(restored.apply("a", 7, () => -1), { status: "duplicate", result: 70 });
  assert.deepEqual(restored.apply("b", 5, () => 50), { status: "applied", result: 50 });
});
