import assert from "node:assert/strict";
import { encodeConfig } from "./config.ts";
import { RaftLog } from "./log.ts";
import type { Config, Entry } from "./types.ts";

const initial: Config = { voters: ["a", "b", "c"], learners: [] };
const grown: Config = { voters: ["a", "b", "c", "d"], outgoing: ["a", "b", "c"], learners: [] };
const normal = (index: number, term: number): Entry => ({ index, term, kind: "normal", data: new Uint8Array() });
const config = (index: number, term: number, c: Config): Entry => ({
  index,
  term,
  kind: "config",
  data: encodeConfig(c),
});

Deno.test("a config takes effect when its entry is appended, and is rolled back when that entry is truncated", () => {
  const log = new RaftLog({ index: 0, term: 0, config: initial });
  log.append([normal(1, 1), config(2, 1, grown), normal(3, 1)]);
  assert.deepEqual(log.config, grown, "in force before it commits");
  assert.equal(log.configIndex, 2);
  assert.deepEqual(log.configAt(1), initial);
  log.append([normal(2, 2)]); // a new leader's entry replaces it
  assert.deepEqual(log.config, initial);
  assert.equal(log.configIndex, 0);
  assert.equal(log.lastIndex, 2);
});

Deno.test("compaction keeps the config in force and the boundary term", () => {
  const log = new RaftLog({ index: 0, term: 0, config: initial });
  log.append([normal(1, 1), config(2, 1, grown), normal(3, 2), normal(4, 2)]);
  log.compact(3);
  assert.equal(log.snapshotIndex, 3);
  assert.equal(log.term(3), 2);
  assert.equal(log.term(2), undefined, "compacted away");
  assert.deepEqual(log.config, grown);
  assert.deepEqual(log.entries.map((e) => e.index), [4]);
  assert.throws(() => log.slice(2, 4), /compacted/);
  assert.throws(() => log.append([normal(3, 3)]), /cannot append/);
});

Deno.test("merge: only a conflict truncates; a stale append leaves what follows alone", () => {
  const log = new RaftLog({ index: 0, term: 0, config: initial });
  log.append([1, 2, 3, 4, 5].map((i) => normal(i, 1)));
  assert.equal(log.merge(6, 1, []), undefined, "no entry 6");
  assert.equal(log.merge(3, 2, []), undefined, "entry 3 is of another term");
  // A reordered, older append covering 2..3: nothing changes, 4 and 5 stay.
  assert.deepEqual(log.merge(1, 1, [normal(2, 1), normal(3, 1)]), { verified: 3 });
  assert.equal(log.lastIndex, 5);
  // The test-only bug truncates anyway.
  const buggy = new RaftLog({ index: 0, term: 0, config: initial });
  buggy.append([1, 2, 3, 4, 5].map((i) => normal(i, 1)));
  assert.deepEqual(buggy.merge(1, 1, [normal(2, 1)], true), { verified: 2, changedFrom: 3 });
  assert.equal(buggy.lastIndex, 2);
  // A conflict at 4 replaces 4 and 5.
  assert.deepEqual(log.merge(3, 1, [normal(4, 2)]), { verified: 4, changedFrom: 4 });
  assert.deepEqual(log.entries.map((e) => e.term), [1, 1, 1, 2]);
});

Deno.test("merge: an append that starts below the snapshot is taken from the snapshot on", () => {
  const log = new RaftLog({ index: 0, term: 0, config: initial });
  log.append([1, 2, 3].map((i) => normal(i, 1)));
  log.compact(3);
  assert.deepEqual(log.merge(1, 1, [2, 3, 4, 5].map((i) => normal(i, 1))), { verified: 5, changedFrom: 4 });
  assert.deepEqual(log.entries.map((e) => e.index), [4, 5]);
  assert.deepEqual(log.merge(1, 1, [normal(2, 1)]), { verified: 3 }, "all of it below: nothing changes");
  assert.equal(log.lastIndex, 5);
});
