/** The LogStore contract (raft/types.ts) as one test suite every implementation runs. */

import assert from "node:assert/strict";
import type { Entry, LogStore, Snapshot } from "./types.ts";

const entry = (index: number, term: number, text = `e${index}`): Entry => ({
  index,
  term,
  kind: "normal",
  data: new TextEncoder().encode(text),
});

const snap = (index: number, term: number, text = `state@${index}`): Snapshot => ({
  index,
  term,
  config: { voters: ["n1", "n2", "n3"], outgoing: ["n1", "n2"], learners: ["l1"] },
  data: new TextEncoder().encode(text),
});

/** `open` makes a fresh store; `reopen`, when given, reopens the same one (durability). */
export async function logStoreContract(
  t: Deno.TestContext,
  open: () => LogStore,
  reopen?: (store: LogStore) => LogStore,
): Promise<void> {
  await t.step("a new store is empty", () => {
    const s = open();
    assert.deepEqual(s.hardState(), { term: 0, commit: 0 });
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 0);
    assert.equal(s.term(0), 0);
  });

  await t.step("append, read back, overwrite a suffix", async () => {
    const s = open();
    await s.append([1, 2, 3, 4, 5].map((i) => entry(i, 1)));
    assert.equal(s.lastIndex(), 5);
    assert.deepEqual(s.entries(2, 4).map((e) => e.index), [2, 3]);
    assert.equal(new TextDecoder().decode(s.entries(3, 4)[0].data), "e3");
    await s.append([entry(3, 2, "new3"), entry(4, 2, "new4")]);
    assert.equal(s.lastIndex(), 4, "the old suffix from 3 on is gone");
    assert.equal(s.term(3), 2);
    assert.equal(new TextDecoder().decode(s.entries(4, 5)[0].data), "new4");
    await assert.rejects(async () => await s.append([entry(7, 2)]), /gap/);
    assert.throws(() => s.entries(3, 9), /past the last index/);
  });

  await t.step("maxBytes limits a read, but never below one entry", async () => {
    const s = open();
    await s.append([1, 2, 3].map((i) => entry(i, 1, "x".repeat(10))));
    assert.equal(s.entries(1, 4, 15).length, 1);
    assert.equal(s.entries(1, 4, 20).length, 2);
    assert.equal(s.entries(1, 4, 1).length, 1);
  });

  await t.step("compaction keeps the boundary term", async () => {
    const s = open();
    await s.append([1, 2, 3, 4].map((i) => entry(i, i)));
    await s.compact(2);
    assert.equal(s.firstIndex(), 3);
    assert.equal(s.term(2), 2);
    assert.equal(s.term(1), undefined);
    assert.throws(() => s.entries(1, 3), /compacted/);
    assert.deepEqual(s.entries(3, 5).map((e) => e.index), [3, 4]);
  });

  await t.step("entries keep their client session", async () => {
    const s = open();
    await s.append([{ ...entry(1, 1), client: "c7", seq: 3 }, entry(2, 1)]);
    const [a, b] = s.entries(1, 3);
    assert.equal(a.client, "c7");
    assert.equal(a.seq, 3);
    assert.equal(b.client, undefined);
    assert.equal(b.seq, undefined);
  });

  await t.step("a snapshot the log continues keeps the entries after it", async () => {
    const s = open();
    assert.equal(s.snapshot(), undefined);
    await s.append([1, 2, 3, 4, 5].map((i) => entry(i, 1)));
    await s.saveSnapshot(snap(3, 1));
    assert.equal(s.firstIndex(), 4);
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(3), 1);
    assert.deepEqual(s.entries(4, 6).map((e) => e.index), [4, 5]);
    assert.throws(() => s.entries(3, 4), /compacted/);
    const got = s.snapshot()!;
    assert.deepEqual({ ...got, data: new TextDecoder().decode(got.data) }, { ...snap(3, 1), data: "state@3" });
  });

  await t.step("a snapshot the log does not continue replaces the whole log", async () => {
    const s = open();
    await s.append([1, 2, 3].map((i) => entry(i, 1)));
    await s.saveSnapshot(snap(5, 2)); // past the end
    assert.equal(s.firstIndex(), 6);
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(5), 2);
    await s.append([entry(6, 2)]);
    assert.deepEqual(s.entries(6, 7).map((e) => e.index), [6]);
    await assert.rejects(async () => await s.append([entry(5, 2)]), /below the first index/);
    const t2 = open();
    await t2.append([1, 2, 3, 4].map((i) => entry(i, 1)));
    await t2.saveSnapshot(snap(3, 2)); // same index, another term: a conflicting log
    assert.equal(t2.firstIndex(), 4);
    assert.equal(t2.lastIndex(), 3);
  });

  await t.step("an older snapshot than the saved one is ignored", async () => {
    const s = open();
    await s.append([1, 2, 3, 4].map((i) => entry(i, 1)));
    await s.saveSnapshot(snap(3, 1));
    await s.saveSnapshot(snap(2, 1, "old"));
    assert.equal(s.snapshot()!.index, 3);
    assert.equal(s.firstIndex(), 4);
    assert.equal(s.lastIndex(), 4);
  });

  await t.step("persist writes a snapshot, then entries, then the hard state", async () => {
    const s = open();
    await s.append([1, 2].map((i) => entry(i, 1)));
    await s.persist({ snapshot: snap(4, 2), entries: [entry(5, 2), entry(6, 3)], hardState: { term: 3, commit: 5 } });
    assert.equal(s.snapshot()!.index, 4);
    assert.equal(s.firstIndex(), 5);
    assert.equal(s.lastIndex(), 6);
    assert.deepEqual(s.entries(5, 7).map((e) => e.term), [2, 3]);
    assert.deepEqual(s.hardState(), { term: 3, commit: 5 });
    await s.persist({ entries: [entry(6, 4)] });
    assert.equal(s.term(6), 4);
    assert.deepEqual(s.hardState(), { term: 3, commit: 5 }, "no hard state given: unchanged");
    await assert.rejects(async () => await s.persist({ entries: [entry(9, 4)] }), /gap/);
  });

  if (reopen) {
    await t.step("what persist wrote survives a reopen", async () => {
      const s = open();
      await s.persist({ entries: [entry(1, 1), entry(2, 2)], hardState: { term: 2, vote: "n1", commit: 1 } });
      const again = reopen(s);
      assert.deepEqual(again.hardState(), { term: 2, vote: "n1", commit: 1 });
      assert.deepEqual(again.entries(1, 3).map((e) => e.term), [1, 2]);
    });

    await t.step("a snapshot, the entries after it and their sessions survive a reopen", async () => {
      const s = open();
      await s.append([1, 2, 3, 4].map((i) => ({ ...entry(i, 1), client: "c1", seq: i })));
      await s.saveSnapshot(snap(2, 1));
      await s.setHardState({ term: 1, commit: 3 });
      const again = reopen(s);
      assert.equal(again.snapshot()!.index, 2);
      assert.deepEqual(again.snapshot()!.config, snap(2, 1).config);
      assert.equal(new TextDecoder().decode(again.snapshot()!.data), "state@2");
      assert.equal(again.firstIndex(), 3);
      assert.equal(again.lastIndex(), 4);
      assert.equal(again.term(2), 1);
      assert.deepEqual(again.entries(3, 5).map((e) => [e.index, e.client, e.seq]), [[3, "c1", 3], [4, "c1", 4]]);
    });

    await t.step("entries, hard state and compaction survive a reopen", async () => {
      const s = open();
      await s.append([1, 2, 3].map((i) => entry(i, 1)));
      await s.setHardState({ term: 3, vote: "n2", commit: 2 });
      await s.compact(1);
      const again = reopen(s);
      assert.deepEqual(again.hardState(), { term: 3, vote: "n2", commit: 2 });
      assert.equal(again.firstIndex(), 2);
      assert.equal(again.lastIndex(), 3);
      assert.equal(again.term(1), 1);
      assert.deepEqual(again.entries(2, 4).map((e) => e.index), [2, 3]);
    });
  }
}
