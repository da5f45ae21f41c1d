import assert from "node:assert/strict";
import type { Message } from "./core.ts";
import { NotLeaderError, RaftDriver, TimeoutError } from "./driver.ts";
import { coalesce } from "./messages.ts";
import { encodePut, KvMachine } from "./kv.ts";
import { MemoryLogStore } from "./memory_store.ts";
import type { Entry, LogStore, StoreWrite, Transport } from "./types.ts";

/** Delivers messages between drivers in this process, asynchronously, unless a node is cut off. */
class Hub {
  readonly handlers = new Map<string, (from: string, m: Message) => void>();
  readonly cut = new Set<string>();

  transport(id: string): Transport<Message> {
    return {
      send: (to, m) => {
        if (this.cut.has(id) || this.cut.has(to)) return;
        setTimeout(() => this.handlers.get(to)?.(id, m), 0);
      },
      onMessage: (h) => void this.handlers.set(id, h),
      close: () => Promise.resolve(),
    };
  }
}

function cluster(
  ids: string[],
  opts: { snapshotEvery?: number; snapshotAfterBytes?: number; store?: (id: string) => LogStore } = {},
) {
  const hub = new Hub();
  const fatal: unknown[] = [];
  const machines = new Map<string, KvMachine>();
  const drivers = new Map(ids.map((id) => {
    const machine = new KvMachine();
    machines.set(id, machine);
    const driver = new RaftDriver({
      id,
      voters: ids,
      store: opts.store?.(id) ?? new MemoryLogStore(),
      transport: hub.transport(id),
      machine,
      onFatal: (err) => fatal.push(err),
      tickMs: 5,
      snapshotEvery: opts.snapshotEvery,
      snapshotAfterBytes: opts.snapshotAfterBytes,
    });
    return [id, driver];
  }));
  const stop = () => {
    drivers.forEach((d) => d.stop());
    if (!opts.store) assert.deepEqual(fatal, [], "no node stopped on an error");
  };
  return { hub, drivers, machines, fatal, stop };
}

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const leaderOf = <R>(drivers: Map<string, RaftDriver<R>>) =>
  [...drivers.values()].find((d) => d.node.role === "leader");

const put = (key: string, value: string) => encodePut({ key, value });

Deno.test("RaftDriver: a leader is elected, proposals apply everywhere once, reads see them", async () => {
  const c = cluster(["n1", "n2", "n3"]);
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    const follower = [...c.drivers.values()].find((d) => d !== leader)!;
    await assert.rejects(follower.propose(put("k", "v")), NotLeaderError);
    const first = await leader.propose(put("k", "v1"), { client: "c1", seq: 1 });
    assert.deepEqual(first, { status: "applied", result: "ok" });
    const retry = await leader.propose(put("k", "v1"), { client: "c1", seq: 1 });
    assert.deepEqual(retry, { status: "duplicate", result: "ok" });
    await leader.readBarrier();
    const leaderKv = c.machines.get(leader.node.id)!;
    assert.equal(leaderKv.kv.kv.get("k"), "v1");
    await until("every node to apply it", () => [...c.machines.values()].every((m) => m.kv.kv.get("k") === "v1"));
  } finally {
    c.stop();
  }
});

/**
 * A read barrier, asked again while the node knows no leader (an election under way: on a loaded machine a late
 * heartbeat starts one). A refused read is safe to retry; what a read that succeeds sees is what is checked.
 */
async function readBarrier<R>(node: RaftDriver<R>): Promise<void> {
  for (const until = Date.now() + 10_000;;) {
    try {
      return await node.readBarrier();
    } catch (err) {
      if (!(err instanceof NotLeaderError) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

Deno.test("RaftDriver: a follower's read barrier waits for the leader's read index to be applied there", async () => {
  const c = cluster(["n1", "n2", "n3"]);
  try {
    // Before the first election no node knows a leader: a read is refused at once.
    await assert.rejects(c.drivers.get("n1")!.readBarrier(), NotLeaderError);
    let leader = await until("a leader", () => leaderOf(c.drivers));
    const follower = [...c.drivers.values()].find((d) => d !== leader)!;
    await until("the follower to know its leader", () => follower.leader === leader.node.id);
    for (let i = 1; i <= 20; i++) {
      // To whichever node leads now (a loaded machine may see an election).
      for (;;) {
        leader = await until("a leader", () => leaderOf(c.drivers));
        try {
          await leader.propose(put("k", `v${i}`));
          break;
        } catch (err) {
          if (!(err instanceof NotLeaderError)) throw err;
        }
      }
      // Acknowledged by the leader: a read at the follower that starts now sees it, lagging or not.
      await readBarrier(follower);
      assert.equal(c.machines.get(follower.node.id)!.kv.kv.get("k"), `v${i}`);
    }
    // A follower now (the one above, unless an election made it the leader).
    leader = await until("a leader", () => leaderOf(c.drivers));
    const reader = [...c.drivers.values()].find((d) => d !== leader)!;
    await until("the follower to know its leader", () => reader.leader === leader.node.id);
    // Its leader cut off: the request is lost, the follower asks again, and the next leader answers.
    c.hub.cut.add(leader.node.id);
    await readBarrier(reader);
    assert.notEqual(reader.leader, leader.node.id, "answered by the next leader");
    assert.equal(c.machines.get(reader.node.id)!.kv.kv.get("k"), "v20");
    // Cut off itself, it asks on until it times out, or gives up once it knows no leader.
    c.hub.cut.add(reader.node.id);
    const lost = reader.readBarrier();
    await assert.rejects(lost, (err) => err instanceof TimeoutError || err instanceof NotLeaderError);
  } finally {
    c.stop();
  }
});

Deno.test("RaftDriver batches proposals that arrive together into few writes", async () => {
  const c = cluster(["n1", "n2", "n3"]);
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    await leader.propose(put("warm", "up"));
    const before = { ...leader.stats };
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => leader.propose(put(`k${i}`, "v"), { client: `c${i}`, seq: 1 })),
    );
    const fsyncs = leader.stats.fsyncs - before.fsyncs;
    const entries = leader.stats.entriesWritten - before.entriesWritten;
    assert.equal(entries, 200);
    assert.ok(fsyncs <= 5, `${fsyncs} writes for 200 entries proposed at once`);
  } finally {
    c.stop();
  }
});

Deno.test("RaftDriver: a node cut off past a snapshot catches up from the snapshot", async () => {
  const c = cluster(["n1", "n2", "n3"], { snapshotEvery: 20 });
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    const lagging = [...c.drivers.keys()].find((id) => id !== leader.node.id)!;
    c.hub.cut.add(lagging);
    for (let i = 0; i < 60; i++) await leader.propose(put(`k${i}`, `v${i}`));
    assert.ok(leader.node.snapshotIndex >= 40, "the leader compacted its log");
    c.hub.cut.delete(lagging);
    await until("the lagging node to catch up", () => c.machines.get(lagging)!.kv.kv.get("k59") === "v59");
    assert.ok(c.drivers.get(lagging)!.node.snapshotIndex >= 40, "it caught up from a snapshot");
  } finally {
    c.stop();
  }
});

Deno.test("RaftDriver: a few large entries are compacted by their bytes, not left in memory for their count", async () => {
  const c = cluster(["n1", "n2", "n3"], { snapshotEvery: 10_000, snapshotAfterBytes: 64 << 10 });
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    const big = "x".repeat(16 << 10);
    for (let i = 0; i < 12; i++) await leader.propose(put(`k${i}`, big));
    await until("every node to compact", () => [...c.drivers.values()].every((d) => d.node.snapshotIndex > 0));
    for (const d of c.drivers.values()) assert.ok(d.node.log.length < 12, "the log holds what came after");
  } finally {
    c.stop();
  }
});

Deno.test("RaftDriver takes snapshots under load while its writes are slow (commits applied between writes)", async () => {
  const slowStore = (): LogStore => {
    const s = new MemoryLogStore();
    const persist = s.persist.bind(s);
    s.persist = async (w: StoreWrite) => {
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 6));
      await persist(w);
    };
    return s;
  };
  const c = cluster(["n1", "n2", "n3"], { snapshotEvery: 25, store: slowStore });
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    let n = 0;
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 40; i++) await leader.propose(put(`k${w}`, `${i}`), { client: `c${w}`, seq: ++n });
    }));
    assert.deepEqual(c.fatal, []);
    assert.ok(leader.stats.snapshotsTaken >= 5, `${leader.stats.snapshotsTaken} snapshots`);
  } finally {
    c.stop();
  }
});

Deno.test("RaftDriver stops the node when its store fails, and answers nothing after", async () => {
  let failing = false;
  const failingStore = (): LogStore => {
    const s = new MemoryLogStore();
    const persist = s.persist.bind(s);
    s.persist = (w: StoreWrite) => failing ? Promise.reject(new Error("EIO: fsync failed")) : persist(w);
    return s;
  };
  const c = cluster(["n1"], { store: failingStore });
  try {
    const d = c.drivers.get("n1")!;
    await until("n1 to lead", () => d.node.role === "leader");
    await d.propose(put("a", "1"));
    failing = true;
    await assert.rejects(d.propose(put("a", "2")), NotLeaderError);
    assert.equal(c.fatal.length, 1);
    assert.match(String(c.fatal[0]), /EIO/);
    await assert.rejects(d.propose(put("a", "3")), /stopped/);
  } finally {
    c.stop();
  }
});

Deno.test("coalescing keeps only the last append of a burst to each peer", () => {
  const entry = (index: number): Entry => ({ index, term: 2, kind: "normal", data: new Uint8Array() });
  const append = (to: string, n: number): Message => ({
    type: "append",
    from: "n1",
    to,
    term: 2,
    prevIndex: 4,
    prevTerm: 2,
    entries: Array.from({ length: n }, (_, i) => entry(5 + i)),
    commit: 4,
  });
  const vote: Message = { type: "vote-response", from: "n1", to: "n2", term: 2, granted: false };
  const out = coalesce([append("n2", 1), append("n3", 1), vote, append("n2", 2), append("n3", 2), append("n2", 3)]);
  assert.deepEqual(out, [vote, append("n3", 2), append("n2", 3)]);
});

Deno.test("a machine that keeps its applied index never gets ahead of the log on disk (a slow follower's fsync)", async () => {
  class SlowStore extends MemoryLogStore {
    delayMs = 0;
    override async persist(write: StoreWrite): Promise<void> {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      return super.persist(write);
    }
  }
  const hub = new Hub();
  const ids = ["a", "b", "c"];
  const stores = new Map(ids.map((id) => [id, new SlowStore()]));
  const applied = new Map(ids.map((id) => [id, 0]));
  const drivers = new Map(ids.map((id) => [
    id,
    new RaftDriver({
      id,
      voters: ids,
      store: stores.get(id)!,
      transport: hub.transport(id),
      machine: {
        apply: (e: Entry) => void applied.set(id, e.index),
        applied: () => applied.get(id)!,
        snapshot: () => new Uint8Array(),
        restore() {},
      },
      onFatal: (err) => assert.fail(String(err)),
      tickMs: 5,
    }),
  ]));
  try {
    const leader = await until("a leader", () => ids.find((id) => drivers.get(id)!.node.role === "leader"));
    const slow = ids.find((id) => id !== leader)!;
    stores.get(slow)!.delayMs = 100;
    for (let i = 0; i < 15; i++) {
      await drivers.get(leader)!.propose(encodePut({ key: `k${i}`, value: "v" }));
      assert.ok(
        applied.get(slow)! <= stores.get(slow)!.lastIndex(),
        `applied ${applied.get(slow)} past the stored log (${stores.get(slow)!.lastIndex()})`,
      );
    }
  } finally {
    drivers.forEach((d) => d.stop());
  }
});

/** A KvMachine whose snapshots are made "elsewhere": of the state when asked, handed over a little later. */
class SlowSnapshots extends KvMachine {
  index = 0;
  asked = 0;
  failing = false;
  override apply(entry: Entry) {
    this.index = entry.index;
    return super.apply(entry);
  }
  snapshotAsync(): Promise<{ index: number; data: Uint8Array }> {
    this.asked++;
    if (this.failing) return Promise.reject(new Error("no worker"));
    const taken = { index: this.index, data: this.snapshot() };
    return new Promise((r) => setTimeout(() => r(taken), 20));
  }
}

/** A one-member cluster over `machine`, snapshotting every 10 entries. */
function loneDriver(machine: SlowSnapshots) {
  return new RaftDriver({
    id: "n1",
    voters: ["n1"],
    store: new MemoryLogStore(),
    transport: { send: () => {}, onMessage: () => {}, close: () => Promise.resolve() },
    machine,
    onFatal: (err) => assert.fail(`fatal: ${err}`),
    tickMs: 5,
    snapshotEvery: 10,
  });
}

Deno.test("RaftDriver stores a snapshot made off its thread at the index it names; one that fails is made here", async () => {
  for (const failing of [false, true]) {
    const machine = new SlowSnapshots();
    machine.failing = failing;
    const driver = loneDriver(machine);
    try {
      for (let i = 0; i < 40; i++) await driver.propose(put(`k${i % 3}`, `${i}`));
      await until("a snapshot", () => driver.stats.snapshotsTaken > 0);
      const snapshotAt = driver.node.snapshotIndex;
      assert.ok(snapshotAt >= 10 && snapshotAt <= driver.applied, `snapshot at ${snapshotAt}`);
      assert.equal(machine.asked, 1, failing ? "asked once, then made here" : "one at a time");
      if (failing) assert.equal(driver.stats.snapshotsTaken, 1, "made here after the failure");
    } finally {
      driver.stop();
    }
  }
});

Deno.test("RaftDriver: after a snapshot, the next waits for as many bytes of entries as it held", async () => {
  const machine = new SlowSnapshots();
  machine.failing = true; // made here, at once: the test counts them exactly
  const big = new Uint8Array(2000);
  machine.snapshot = () => big;
  const driver = loneDriver(machine);
  try {
    const value = "v".repeat(90); // an entry of about 100 bytes
    for (let i = 0; i < 10; i++) await driver.propose(put("k", value));
    await until("the first snapshot", () => driver.stats.snapshotsTaken === 1);
    for (let i = 0; i < 15; i++) await driver.propose(put("k", value));
    assert.equal(driver.stats.snapshotsTaken, 1, "15 entries of ~100 bytes are less than the 2000 it held");
    for (let i = 0; i < 10; i++) await driver.propose(put("k", value));
    await until("the second snapshot", () => driver.stats.snapshotsTaken === 2);
  } finally {
    driver.stop();
  }
});

Deno.test("RaftDriver: what a gatherer proposes before a turn goes in that turn; a stopped driver hands it over at once", async () => {
  const c = cluster(["n1"]);
  try {
    const leader = await until("a leader", () => leaderOf(c.drivers));
    const waiting: string[] = [];
    const answers: Promise<unknown>[] = [];
    leader.beforeTurn(() => {
      for (const key of waiting.splice(0)) answers.push(leader.propose(put(key, "v")));
    });
    const fsyncs = leader.stats.fsyncs;
    waiting.push("a", "b", "c");
    leader.wake();
    await until("the gathered writes", () => answers.length === 3 || undefined);
    await Promise.all(answers);
    assert.equal(c.machines.get("n1")!.kv.kv.get("c"), "v");
    assert.equal(leader.stats.fsyncs - fsyncs, 1, "the three went in one write");
    // Asked for now, the turn comes in this turn's microtasks: no macrotask runs first.
    let macrotask = false;
    setTimeout(() => macrotask = true, 0);
    waiting.push("now");
    leader.wake(true);
    for (let i = 0; i < 10 && answers.length < 4; i++) await Promise.resolve();
    assert.equal(answers.length, 4, "gathered before any macrotask");
    assert.equal(macrotask, false);
    await answers[3];
    leader.stop();
    waiting.push("d");
    leader.wake();
    await assert.rejects(answers[4], /stopped/);
  } finally {
    c.stop();
  }
});
