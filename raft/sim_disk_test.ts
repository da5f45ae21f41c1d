import assert from "node:assert/strict";
import { SimDisk } from "./sim_disk.ts";
import type { Entry } from "./types.ts";

const entry = (index: number): Entry => ({ index, term: 1, kind: "normal", data: new Uint8Array([index]) });

/** A rand() that returns these values, in order. */
const script = (...values: number[]) => () => values.shift()!;

Deno.test("synced writes survive a crash; unsynced ones are lost", () => {
  const disk = new SimDisk();
  disk.write({ kind: "entries", entries: [entry(1), entry(2)] });
  disk.write({ kind: "hard-state", hardState: { term: 1, vote: "a", commit: 1 } });
  disk.sync();
  disk.write({ kind: "entries", entries: [entry(3)] });
  disk.write({ kind: "hard-state", hardState: { term: 2, commit: 3 } });
  assert.deepEqual(disk.crash(script(0)), { lost: 2, torn: false }); // none of the unsynced writes got there
  assert.equal(disk.lastIndex, 2);
  assert.deepEqual(disk.synced.hardState, { term: 1, vote: "a", commit: 1 });
});

Deno.test("a prefix of the unsynced writes may reach the disk, and the last entry of it may be torn", () => {
  const disk = new SimDisk();
  disk.write({ kind: "entries", entries: [entry(1), entry(2), entry(3)] });
  // Two of the three entries got there, and the second is torn: recovery drops it.
  assert.deepEqual(disk.crash(script(0.6, 0.1)), { lost: 2, torn: true });
  assert.equal(disk.lastIndex, 1);
  const whole = new SimDisk();
  whole.write({ kind: "entries", entries: [entry(1), entry(2), entry(3)] });
  assert.deepEqual(whole.crash(script(0.6, 0.9)), { lost: 1, torn: false });
  assert.equal(whole.lastIndex, 2);
});

Deno.test("a snapshot write compacts the disk's log like LogStore.saveSnapshot", () => {
  const disk = new SimDisk();
  disk.write({ kind: "entries", entries: [entry(1), entry(2), entry(3)] });
  const config = { voters: ["a"], learners: [] };
  disk.write({ kind: "snapshot", snapshot: { index: 2, term: 1, config, data: new Uint8Array() } });
  disk.sync();
  assert.equal(disk.term(2), 1);
  assert.equal(disk.lastIndex, 3);
  assert.deepEqual(disk.synced.entries.map((e) => e.index), [3]);
  disk.write({ kind: "snapshot", snapshot: { index: 9, term: 4, config, data: new Uint8Array() } });
  disk.sync();
  assert.equal(disk.lastIndex, 9);
  assert.deepEqual(disk.synced.entries, [], "a snapshot the log does not continue replaces it");
});
