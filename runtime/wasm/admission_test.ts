import assert from "node:assert/strict";
import { Admission, enterBoth, type Release, WATCH_AFTER_MS } from "./admission.ts";

const release = (turn: Release | string): Release => {
  assert.equal(typeof turn, "function", `refused: ${turn}`);
  return turn as Release;
};

Deno.test("admission: calls run up to the limit, the next wait in order, the rest are refused at once", async () => {
  const gate = new Admission(2, 2);
  const a = release(await gate.enter(60_000));
  const b = release(await gate.enter(60_000));
  assert.equal(gate.running, 2);
  const order: string[] = [];
  const c = gate.enter(60_000).then((t) => (order.push("c"), release(t)));
  const d = gate.enter(60_000).then((t) => (order.push("d"), release(t)));
  assert.equal(gate.waiting, 2);
  assert.equal(await gate.enter(60_000), "full");
  a();
  a(); // a second release gives back nothing more
  const cTurn = await c;
  assert.deepEqual(order, ["c"]);
  assert.equal(gate.running, 2);
  assert.equal(gate.waiting, 1);
  b();
  const dTurn = await d;
  assert.deepEqual(order, ["c", "d"]);
  cTurn();
  dTurn();
  assert.equal(gate.running, 0);
  // Free again: a call runs at once.
  release(await gate.enter(60_000))();
});

Deno.test("admission: a call that waits past its limit, or whose client goes away, is refused and leaves the queue", async () => {
  const gate = new Admission(1, 4);
  const only = release(await gate.enter(60_000));
  assert.equal(await gate.enter(10), "waited");
  let asked = 0;
  const client = new AbortController();
  const leaving = gate.enter(60_000, () => (asked++, client.signal));
  assert.equal(gate.waiting, 1);
  assert.equal(asked, 0, "a call that has just begun to wait does not ask for its client's signal");
  await new Promise((r) => setTimeout(r, WATCH_AFTER_MS + 20));
  assert.equal(asked, 1, "one that waits on does");
  client.abort();
  assert.equal(await leaving, "aborted");
  assert.equal(gate.waiting, 0);
  // A call admitted before its watch begins never asks for the signal.
  const quick = gate.enter(60_000, () => (asked++, client.signal));
  only();
  release(await quick)();
  await new Promise((r) => setTimeout(r, WATCH_AFTER_MS + 20));
  assert.equal(asked, 1);
  assert.equal(gate.running, 0);
});

Deno.test("admission: no queue means calls over the limit are refused at once", async () => {
  const gate = new Admission(1, 0);
  const only = release(await gate.enter(60_000));
  assert.equal(await gate.enter(60_000), "full");
  only();
});

Deno.test("admission through a service's gate and the node's: a call refused by the second gives back the first", async () => {
  const service = new Admission(4, 4);
  const node = new Admission(1, Infinity);
  const first = release(await enterBoth(service, node, 60_000));
  assert.equal(await enterBoth(service, node, 10), "waited");
  assert.equal(service.running, 1, "the refused call's service turn was given back");
  const next = enterBoth(service, node, 60_000);
  first();
  const second = release(await next);
  assert.equal(service.running, 1);
  assert.equal(node.running, 1);
  second();
  assert.equal(service.running, 0);
  assert.equal(node.running, 0);
});
