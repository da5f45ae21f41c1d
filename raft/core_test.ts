/**
 * The core driven by hand: a few nodes over MemoryLogStores, messages
 * delivered by the test, so membership changes, snapshots and the
 * ready/advance contract can be checked step by step.
 */

import assert from "node:assert/strict";
import { isJoint } from "./config.ts";
import { type Message, RaftNode, type RaftOptions, type Ready } from "./core.ts";
import { MemoryLogStore } from "./memory_store.ts";
import { seeded } from "./sim.ts";
import type { Entry } from "./types.ts";

class Cluster {
  readonly nodes = new Map<string, RaftNode>();
  readonly stores = new Map<string, MemoryLogStore>();
  /** Committed entries each node applied, and the snapshot data it loaded. */
  readonly applied = new Map<string, Entry[]>();
  readonly loaded = new Map<string, string>();
  /** Reads each node's core released (ReadIndex). */
  readonly reads = new Map<string, Ready["reads"]>();
  queue: Message[] = [];
  readonly #rand = seeded(1);
  readonly #opts: Partial<RaftOptions>;

  constructor(voters: string[], learners: string[] = [], opts: Partial<RaftOptions> = {}) {
    this.#opts = opts;
    for (const id of [...voters, ...learners]) this.start(id, voters, learners);
  }

  start(id: string, voters: string[], learners: string[] = []): RaftNode {
    const store = this.stores.get(id) ?? new MemoryLogStore();
    this.stores.set(id, store);
    const snapshot = store.snapshot();
    const entries = store.lastIndex() >= store.firstIndex()
      ? store.entries(store.firstIndex(), store.lastIndex() + 1)
      : [];
    const node = new RaftNode({
      id,
      voters,
      learners,
      electionTicks: 10,
      heartbeatTicks: 3,
      random: this.#rand,
      restore: { hardState: store.hardState(), entries, ...(snapshot && { snapshot }) },
      ...this.#opts,
    });
    this.nodes.set(id, node);
    this.applied.set(id, []);
    return node;
  }

  get(id: string): RaftNode {
    return this.nodes.get(id)!;
  }

  /** The driver: persist, send, apply, advance. */
  drive(id: string): void {
    const node = this.get(id);
    while (node.hasReady()) {
      const rd = node.ready();
      this.persist(id, rd);
      this.queue.push(...rd.messages);
      this.applied.get(id)!.push(...rd.committed);
      this.reads.set(id, [...this.reads.get(id) ?? [], ...rd.reads]);
      node.advance(rd);
    }
  }

  persist(id: string, rd: Ready): void {
    const store = this.stores.get(id)!;
    if (rd.snapshot) {
      void store.saveSnapshot(rd.snapshot);
      this.loaded.set(id, new TextDecoder().decode(rd.snapshot.data));
    }
    void store.append(rd.entries);
    if (rd.hardState) void store.setHardState(rd.hardState);
  }

  /** Delivers queued messages `match` picks (and what follows from them), oldest first; the rest stay queued. */
  deliver(match: (m: Message) => boolean = () => true): void {
    for (let i = 0; i < 10_000; i++) {
      const at = this.queue.findIndex((m) => match(m) && this.nodes.has(m.to));
      if (at < 0) return;
      const [m] = this.queue.splice(at, 1);
      this.get(m.to).step(m);
      this.drive(m.to);
    }
    throw new Error("messages keep coming");
  }

  /** Only messages among `ids`. */
  among(...ids: string[]): (m: Message) => boolean {
    return (m) => ids.includes(m.from) && ids.includes(m.to);
  }

  drop(match: (m: Message) => boolean): void {
    this.queue = this.queue.filter((m) => !match(m));
  }

  /** Ticks `id` until it campaigns, then lets the messages among `ids` decide. */
  elect(id: string, ids = [...this.nodes.keys()]): RaftNode {
    const node = this.get(id);
    for (let i = 0; i < 100 && node.role === "follower"; i++) {
      node.tick();
      this.drive(id);
    }
    this.deliver(this.among(...ids));
    return node;
  }

  put(id: string, text: string): number | undefined {
    const index = this.get(id).propose(new TextEncoder().encode(text));
    this.drive(id);
    return index;
  }

  heartbeat(id: string): void {
    for (let i = 0; i < 3; i++) this.get(id).tick();
    this.drive(id);
  }
}

const kinds = (node: RaftNode) => node.log.map((e) => e.kind);

Deno.test("membership: C_old,new first, then C_new by itself once the joint entry commits; one change at a time", () => {
  const c = new Cluster(["a", "b", "c"], ["d", "e"]);
  const a = c.elect("a");
  assert.equal(a.role, "leader");
  const change = a.changeConfig({ voters: ["a", "b", "c", "d", "e"] });
  assert.ok(change.ok);
  c.drive("a");
  assert.ok(isJoint(a.config), "in force as soon as it is appended");
  assert.deepEqual(a.changeConfig({ voters: ["a"] }), {
    ok: false,
    reason: `the config change at index ${change.index} is not committed yet`,
  });
  c.deliver();
  assert.deepEqual(kinds(a).slice(-2), ["config", "config"], "C_new followed the joint entry");
  c.heartbeat("a");
  c.deliver();
  for (const id of ["a", "b", "c", "d", "e"]) {
    assert.deepEqual(c.get(id).config, { voters: ["a", "b", "c", "d", "e"], learners: [] }, id);
    assert.equal(c.get(id).commit, a.lastIndex, id);
  }
  assert.ok(a.changeConfig({ voters: ["a", "b", "c"] }).ok, "the next change may start");
});

Deno.test("membership: while joint, a commit needs a majority of C_old and of C_new", () => {
  for (const bug of [undefined, "joint-quorum-union"] as const) {
    const c = new Cluster(["a", "b", "c"], ["d", "e"], bug ? { bug } : {});
    const a = c.elect("a");
    c.deliver();
    const change = a.changeConfig({ voters: ["a", "d", "e"] });
    assert.ok(change.ok);
    c.drive("a");
    // Only the new voters hear of it: all of C_new, but one of C_old's three.
    c.drop((m) => m.to === "b" || m.to === "c");
    c.deliver(c.among("a", "d", "e"));
    if (bug) assert.ok(a.commit >= change.index, "counting the union commits without C_old");
    else {
      assert.ok(a.commit < change.index, "not without a majority of C_old");
      c.heartbeat("a");
      c.deliver(c.among("a", "b", "d", "e")); // b makes two of C_old
      assert.ok(a.commit > change.index, "joint entry and C_new committed");
      assert.deepEqual(a.config, { voters: ["a", "d", "e"], learners: [] }, "b and c are out");
    }
  }
});

Deno.test("membership: while joint, an election needs a majority of C_old and of C_new", () => {
  for (const bug of [undefined, "joint-quorum-union"] as const) {
    const c = new Cluster(["a", "b", "c"], ["d", "e"], bug ? { bug } : {});
    const a = c.elect("a");
    c.deliver();
    const change = a.changeConfig({ voters: ["c", "d", "e"] });
    assert.ok(change.ok);
    c.drive("a");
    // The joint entry reaches b, d and e, and commits; a goes away before C_new gets anywhere.
    c.deliver((m) => m.to !== "c" && (m.type !== "append" || m.entries.every((e) => e.index <= change.index)));
    assert.ok(a.commit >= change.index);
    c.nodes.delete("a");
    c.queue = [];
    // The others restart (so none is bound to a's lease).
    for (const id of ["b", "c", "d", "e"]) c.start(id, ["a", "b", "c"], ["d", "e"]);
    const d = c.get("d");
    assert.deepEqual(d.config, { voters: ["c", "d", "e"], outgoing: ["a", "b", "c"], learners: [] });
    c.elect("d", ["d", "e"]);
    assert.notEqual(d.role, "leader", "d and e are a majority of C_new, but none of C_old");
    c.deliver(c.among("b", "d", "e"));
    if (bug) {
      assert.equal(d.role, "leader", "counting the union: three of five is enough");
      continue;
    }
    assert.notEqual(d.role, "leader", "b alone is no majority of C_old");
    c.deliver(c.among("b", "c", "d", "e"));
    assert.equal(d.role, "leader", "b and c make C_old's majority");
  }
});

Deno.test("membership: a leader outside C_new leads until C_new commits, then steps down", () => {
  const c = new Cluster(["a", "b", "c"], ["d"]);
  const a = c.elect("a");
  c.deliver();
  assert.ok(a.changeConfig({ voters: ["b", "c", "d"], learners: [] }).ok);
  c.drive("a");
  c.deliver();
  assert.equal(a.role, "follower");
  assert.deepEqual(a.config, { voters: ["b", "c", "d"], learners: [] });
  assert.deepEqual(kinds(a).slice(-2), ["config", "config"]);
  assert.equal(a.commit, a.lastIndex, "it stepped down once C_new was committed");
  for (let i = 0; i < 100; i++) a.tick();
  c.drive("a");
  assert.equal(a.role, "follower", "a removed node never campaigns");
  for (const id of ["b", "c", "d"]) c.start(id, ["a", "b", "c"], ["d"]); // forget a's lease
  const b = c.elect("b", ["b", "c", "d"]);
  assert.equal(b.role, "leader");
});

Deno.test("membership: a follower's config goes back when the entry that set it is truncated", () => {
  const voters = ["a", "b", "c", "d", "e"];
  const c = new Cluster(voters, ["f"]);
  const a = c.elect("a");
  c.deliver();
  const before = a.config;
  assert.ok(a.changeConfig({ voters: [...voters, "f"] }).ok);
  c.drive("a");
  c.deliver((m) => m.from === "a" && m.to === "b"); // only b gets the joint entry; its answer is lost
  c.queue = [];
  const b = c.get("b");
  assert.ok(isJoint(b.config), "in force at b as soon as b appended it");
  // a is gone; c, d and e, which never saw the change, elect c, whose entries replace b's.
  c.nodes.delete("a");
  for (const id of ["c", "d", "e"]) c.start(id, voters, ["f"]); // forget a's lease
  assert.equal(c.elect("c", ["c", "d", "e"]).role, "leader");
  c.heartbeat("c");
  c.deliver();
  assert.deepEqual(b.config, before, "the joint entry was truncated, and its config with it");
  assert.equal(b.lastIndex, c.get("c").lastIndex);
});

Deno.test("snapshots: the log is compacted; a follower that needs what went is sent the snapshot and catches up", () => {
  const c = new Cluster(["a", "b", "c"]);
  const a = c.elect("a");
  c.deliver();
  // c is cut off while a commits ten writes with b, applies them and snapshots.
  for (let i = 1; i <= 10; i++) c.put("a", `w${i}`);
  c.deliver(c.among("a", "b"));
  c.drop((m) => m.to === "c");
  const applied = c.applied.get("a")!.at(-1)!.index;
  const snap = a.snapshot(applied, new TextEncoder().encode(`state@${applied}`));
  void c.stores.get("a")!.saveSnapshot(snap);
  assert.equal(a.snapshotIndex, applied);
  assert.equal(a.log.length, 0);
  assert.throws(() => a.snapshot(applied + 5, new Uint8Array()), /applied only/);
  c.put("a", "after");
  c.heartbeat("a");
  c.deliver();
  // The commit index reaches a follower with the next append or heartbeat.
  c.heartbeat("a");
  c.deliver();
  const follower = c.get("c");
  assert.equal(c.loaded.get("c"), `state@${applied}`, "c loaded the snapshot from Ready.snapshot");
  assert.equal(follower.snapshotIndex, applied);
  assert.equal(follower.commit, a.commit);
  assert.deepEqual(c.applied.get("c")!.map((e) => new TextDecoder().decode(e.data)), ["after"]);
  assert.equal(c.stores.get("c")!.snapshot()!.index, applied);
  assert.deepEqual(follower.config, { voters: ["a", "b", "c"], learners: [] }, "the config came with the snapshot");
});

Deno.test("snapshots: a restart restores from the snapshot and the log after it", () => {
  const c = new Cluster(["a", "b", "c"]);
  const a = c.elect("a");
  c.deliver();
  for (let i = 1; i <= 6; i++) c.put("a", `w${i}`);
  c.deliver();
  const snap = a.snapshot(4, new TextEncoder().encode("state@4"));
  void c.stores.get("a")!.saveSnapshot(snap);
  const { commit, lastIndex, term } = a;
  const again = c.start("a", ["a", "b", "c"]);
  assert.equal(again.snapshotIndex, 4);
  assert.equal(again.lastIndex, lastIndex);
  assert.equal(again.commit, commit);
  assert.equal(again.term, term);
  // The state machine is loaded from the snapshot by the driver; the core hands over what follows it.
  const rd = again.ready();
  assert.deepEqual(rd.committed.map((e) => e.index), [5, 6, 7].filter((i) => i <= commit));
});

Deno.test("ready/advance: the core may be stepped while a Ready is being stored; nothing is lost", () => {
  const c = new Cluster(["a", "b"]);
  const a = c.elect("a");
  c.deliver();
  const b = c.get("b");
  c.put("a", "one");
  const first = c.queue.splice(0).filter((m) => m.to === "b");
  for (const m of first) b.step(m);
  const rd1 = b.ready(); // being stored (slowly)...
  c.put("a", "two");
  for (const m of c.queue.splice(0).filter((m) => m.to === "b")) b.step(m);
  b.advance(rd1); // ...done, but b has moved on since
  const rd2 = b.ready();
  assert.deepEqual(rd2.entries.map((e) => new TextDecoder().decode(e.data)), ["two"], "the later entry is still owed");
  assert.ok(rd2.messages.some((m) => m.type === "append-response" && m.success && m.index === a.lastIndex));
  assert.equal(rd1.messages.length + rd2.messages.length, 2, "each answer handed over once");
});

Deno.test("a leader counts itself only for what it has stored: committed means durable on a quorum", () => {
  const c = new Cluster(["a"]);
  const a = c.elect("a");
  const index = a.propose(new TextEncoder().encode("x"))!;
  assert.ok(a.commit < index, "not before its own Ready is stored");
  const rd = a.ready();
  assert.deepEqual(rd.committed.map((e) => e.index).includes(index), false);
  a.advance(rd);
  assert.equal(a.commit, index);
  assert.deepEqual(a.ready().committed.map((e) => e.index), [index]);
});

Deno.test("a write proposed in a client session carries it into the log", () => {
  const c = new Cluster(["a"]);
  const a = c.elect("a");
  const index = a.propose(new TextEncoder().encode("x"), { client: "c9", seq: 4 })!;
  c.drive("a");
  const e = c.stores.get("a")!.entries(index, index + 1)[0];
  assert.equal(e.client, "c9");
  assert.equal(e.seq, 4);
});

Deno.test("entries the driver applied between Readies (appliedTo) are not handed over again, and may be snapshotted", () => {
  const node = new RaftNode({ id: "n1", voters: ["n1"], electionTicks: 10, heartbeatTicks: 3, random: seeded(2) });
  const settle = () => {
    while (node.hasReady()) node.advance(node.ready());
  };
  while (node.role !== "leader") {
    node.tick();
    settle();
  }
  node.propose(new Uint8Array([1]));
  node.propose(new Uint8Array([2]));
  const rd = node.ready();
  node.advance(rd); // stored: the single voter commits them
  assert.equal(node.commit, 3);
  node.appliedTo(3);
  assert.deepEqual(node.ready().committed, [], "already applied");
  assert.equal(node.snapshot(3, new Uint8Array([9])).index, 3);
  assert.throws(() => node.appliedTo(4), /committed only to 3/);
});

Deno.test("a follower's read: the leader confirms it by a quorum and answers with its commit index", () => {
  const c = new Cluster(["a", "b", "c"]);
  assert.equal(c.get("c").readIndex("early"), false, "no leader known yet");
  c.elect("a");
  c.drop(() => true);
  c.put("a", "x"); // index 2: a and b store it, commit it; c lags
  c.deliver((m) => m.to !== "c" && m.from !== "c");
  c.drop((m) => m.to === "c");
  assert.equal(c.get("a").commit, 2);
  assert.ok(c.get("c").commit < 2);
  assert.ok(c.get("c").readIndex("q"));
  c.drive("c");
  c.deliver((m) => m.type === "read-index"); // a starts a round; nothing released before a quorum answers it
  assert.deepEqual(c.reads.get("c"), []);
  assert.ok(!c.queue.some((m) => m.type === "read-index-response"));
  c.deliver((m) => m.to !== "c"); // b answers the round's heartbeat: a and b are a quorum
  const answer = c.queue.find((m) => m.type === "read-index-response");
  assert.deepEqual(answer && { to: answer.to, ctx: answer.ctx, index: answer.index }, { to: "c", ctx: "q", index: 2 });
  c.deliver((m) => m.type === "read-index-response");
  // Released at the leader's index, which c has not applied yet: its driver waits until it has.
  assert.deepEqual(c.reads.get("c"), [{ ctx: "q", index: 2 }]);
  assert.ok(c.applied.get("c")!.length < 2);
  assert.deepEqual(c.reads.get("a"), [], "the leader's own driver is not handed the follower's read");
});

Deno.test("a follower's read is taken up only by a leader with an entry of its term committed; others drop it", () => {
  const c = new Cluster(["a", "b", "c"]);
  const a = c.elect("a");
  a.step({ type: "read-index", from: "b", to: "a", term: a.term, ctx: "q" });
  c.drive("a");
  assert.ok(c.queue.some((m) => m.type === "append" && m.round !== undefined), "a confirms its lead first");
  const b = c.get("b");
  b.step({ type: "read-index", from: "c", to: "b", term: b.term, ctx: "q" });
  c.drive("b");
  assert.ok(!c.queue.some((m) => m.from === "b" && m.type === "read-index-response"));
  // A leader whose no-op has not committed yet answers nothing (the follower asks again).
  const d = new Cluster(["a", "b", "c"]);
  const lead = d.get("a");
  for (let i = 0; i < 100 && lead.role === "follower"; i++) {
    lead.tick();
    d.drive("a");
  }
  d.deliver((m) => m.type !== "append");
  assert.equal(lead.role, "leader");
  assert.ok(lead.commit < lead.lastIndex, "its no-op is not committed");
  d.drop(() => true);
  lead.step({ type: "read-index", from: "b", to: "a", term: lead.term, ctx: "q" });
  d.drive("a");
  assert.deepEqual(d.queue, []);
});
