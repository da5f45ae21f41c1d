import assert from "node:assert/strict";
import { NodeWatch } from "./node_watch.ts";

Deno.test("a node unheard past the timeout is unhealthy; a new leader gives every node the whole timeout", () => {
  let now = 0;
  let leader = false;
  const heard = new Map<string, number>();
  const watch = new NodeWatch({
    self: "me",
    sinceHeard: (node) => heard.has(node) ? now - heard.get(node)! : undefined,
    isLeader: () => leader,
    timeoutMs: 1000,
    now: () => now,
  });
  assert.equal(watch.healthy("me"), true, "itself, always");
  assert.equal(watch.healthy("a"), false, "never heard, not leading: no grace");
  leader = true;
  watch.tick();
  assert.equal(watch.healthy("a"), true, "a new leader has heard nobody yet");
  now = 999;
  assert.equal(watch.healthy("a"), true);
  now = 1000;
  assert.equal(watch.healthy("a"), false, "the grace is over");
  heard.set("a", 900);
  assert.equal(watch.healthy("a"), true);
  now = 1899;
  watch.tick();
  assert.equal(watch.healthy("a"), true);
  now = 1900;
  assert.equal(watch.healthy("a"), false, "silent for the whole timeout");
  leader = false;
  watch.tick();
  leader = true;
  watch.tick();
  assert.equal(watch.healthy("a"), true, "leading again: a new grace");
});
