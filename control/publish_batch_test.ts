import assert from "node:assert/strict";
import { PublishBatcher, type Turns } from "./publish_batch.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The log's turns, played by the event loop: a turn asked for comes once the code running now is done. */
function loopTurns(): Turns {
  let gather = () => {};
  return { beforeWrite: (g) => void (gather = g), wake: () => queueMicrotask(() => gather()) };
}

/** A log of proposals (the batcher's one dependency): ids counted per call, like the queue store's rows. */
function recorder(fail?: (topic: string) => Error | undefined) {
  const proposals: { topic: string; bodies: string[] }[] = [];
  let next = 1;
  const propose = (topic: string, bodies: Uint8Array[]): Promise<number[]> => {
    proposals.push({ topic, bodies: bodies.map(text) });
    const err = fail?.(topic);
    if (err) return Promise.reject(err);
    return Promise.resolve(bodies.map(() => next++));
  };
  return { proposals, propose };
}

Deno.test("publishes that arrive together are one proposal per topic; each publisher gets its own ids in order", async () => {
  const { proposals, propose } = recorder();
  const batcher = new PublishBatcher(propose, loopTurns());
  try {
    const results = await Promise.all([
      batcher.publish("a", [bytes("a1")]),
      batcher.publish("b", [bytes("b1"), bytes("b2")]),
      batcher.publish("a", [bytes("a2"), bytes("a3")]),
      batcher.publish("a", [bytes("a4")]),
    ]);
    assert.deepEqual(proposals, [
      { topic: "a", bodies: ["a1", "a2", "a3", "a4"] },
      { topic: "b", bodies: ["b1", "b2"] },
    ]);
    assert.deepEqual(results, [[1], [5, 6], [2, 3], [4]]);
    // Later publishes make a new batch.
    assert.deepEqual(await batcher.publish("a", [bytes("a5")]), [7]);
    assert.equal(proposals.length, 3);
  } finally {
    batcher.close();
  }
});

Deno.test("a failed proposal fails every publish in it, and only those", async () => {
  const { propose } = recorder((topic) => topic === "down" ? new Error("no leader") : undefined);
  const batcher = new PublishBatcher(propose, loopTurns());
  try {
    const results = await Promise.allSettled([
      batcher.publish("down", [bytes("x")]),
      batcher.publish("up", [bytes("y")]),
      batcher.publish("down", [bytes("z")]),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "fulfilled", "rejected"]);
    assert.equal((results[0] as PromiseRejectedResult).reason.message, "no leader");
  } finally {
    batcher.close();
  }
});

Deno.test("a batch is bounded: by publishes and by bytes (a bigger publish goes alone)", async () => {
  const { proposals, propose } = recorder();
  const batcher = new PublishBatcher(propose, loopTurns());
  try {
    await Promise.all(Array.from({ length: 1200 }, (_, i) => batcher.publish("t", [bytes(`m${i}`)])));
    assert.deepEqual(proposals.map((p) => p.bodies.length), [512, 512, 176]);
    assert.deepEqual(proposals.flatMap((p) => p.bodies), Array.from({ length: 1200 }, (_, i) => `m${i}`));
    proposals.length = 0;
    const big = new Uint8Array(700 << 10);
    await Promise.all([
      batcher.publish("t", [bytes("small")]),
      batcher.publish("t", [big]),
      batcher.publish("t", [big]),
      batcher.publish("t", [new Uint8Array(2 << 20)]),
    ]);
    assert.deepEqual(proposals.map((p) => p.bodies.length), [2, 1, 1]);
  } finally {
    batcher.close();
  }
});

Deno.test("close proposes what is filling; a publish after it goes alone", async () => {
  const { proposals, propose } = recorder();
  const batcher = new PublishBatcher(propose, loopTurns());
  const pending = batcher.publish("t", [bytes("last")]);
  batcher.close();
  assert.deepEqual(await pending, [1]);
  assert.deepEqual(await batcher.publish("t", [bytes("after")]), [2]);
  assert.deepEqual(proposals, [{ topic: "t", bodies: ["last"] }, { topic: "t", bodies: ["after"] }]);
});

Deno.test("while a topic's proposal is under way its next publishes wait, then go as one; other topics do not wait", async () => {
  const proposals: { topic: string; bodies: string[]; done: (ids: number[]) => void }[] = [];
  const batcher = new PublishBatcher(
    (topic, bodies) => new Promise((done) => proposals.push({ topic, bodies: bodies.map(text), done })),
    loopTurns(),
  );
  const turn = () => new Promise((r) => setTimeout(r, 0));
  try {
    const first = batcher.publish("t", [bytes("1")]);
    await turn();
    assert.deepEqual(proposals.map((p) => p.bodies), [["1"]]);
    const waiting = [batcher.publish("t", [bytes("2")]), batcher.publish("t", [bytes("3")])];
    const other = batcher.publish("u", [bytes("x")]);
    await turn();
    assert.deepEqual(proposals.map((p) => p.bodies), [["1"], ["x"]]); // "t" waits; "u" does not
    proposals[1].done([10]);
    assert.deepEqual(await other, [10]);
    proposals[0].done([1]);
    assert.deepEqual(await first, [1]);
    await turn();
    assert.deepEqual(proposals.map((p) => p.bodies), [["1"], ["x"], ["2", "3"]]);
    proposals[2].done([2, 3]);
    assert.deepEqual(await Promise.all(waiting), [[2], [3]]);
  } finally {
    batcher.close();
  }
});

Deno.test("with the log's turns, publishes wait for its next turn and go in it as one", async () => {
  const { proposals, propose } = recorder();
  let gather = () => {};
  let wakes = 0;
  const batcher = new PublishBatcher(propose, { beforeWrite: (g) => (gather = g), wake: () => void wakes++ });
  try {
    const pending = [batcher.publish("t", [bytes("a")]), batcher.publish("t", [bytes("b")])];
    assert.equal(wakes, 1, "one turn asked for");
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(proposals.length, 0, "nothing goes before the turn");
    gather();
    assert.deepEqual(proposals, [{ topic: "t", bodies: ["a", "b"] }]);
    assert.deepEqual(await Promise.all(pending), [[1], [2]]);
  } finally {
    batcher.close();
  }
});

Deno.test("publishers one at a time write in this turn; every eighth waits for a turn, and batching resumes", async () => {
  const { proposals, propose } = recorder();
  let gather = () => {};
  const wakes: boolean[] = [];
  const batcher = new PublishBatcher(propose, {
    beforeWrite: (g) => (gather = g),
    wake: (now) => {
      wakes.push(now ?? false);
      queueMicrotask(() => gather());
    },
  });
  try {
    // One at a time: after four proposals of one publish each, the writes start at once, but for every eighth.
    const idle = () => new Promise((r) => setTimeout(r, 0)); // the publisher's next request takes a while
    for (let i = 0; i < 20; i++) await batcher.publish("t", [bytes(`m${i}`)]).then(idle);
    assert.deepEqual(wakes.slice(0, 4), [false, false, false, false], "first seen in turns");
    const quick = wakes.slice(4);
    assert.deepEqual(quick.map((now, i) => now ? "." : `turn ${i + 1}`).filter((w) => w !== "."), [
      "turn 8",
      "turn 16",
    ]);
    // Publishers come together again: the probe's turn gathers them, and turns are back.
    wakes.length = 0;
    let probe = batcher.publish("t", [bytes("x")]);
    while (wakes.at(-1) === true) {
      await probe.then(idle);
      probe = batcher.publish("t", [bytes("x")]);
    }
    const together = [probe, batcher.publish("t", [bytes("y")]), batcher.publish("t", [bytes("z")])];
    await Promise.all(together).then(idle);
    assert.deepEqual(proposals.at(-1)!.bodies, ["x", "y", "z"], "the probe gathered the three");
    wakes.length = 0;
    await Promise.all([batcher.publish("t", [bytes("p")]), batcher.publish("t", [bytes("q")])]);
    assert.deepEqual(wakes, [false], "and the next waits for a turn");
  } finally {
    batcher.close();
  }
});
