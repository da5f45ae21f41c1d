import assert from "node:assert/strict";
import { retryDelay } from "./backoff.ts";
import { matchEvent, validEventName } from "./pattern.ts";

Deno.test("event patterns: * is one segment, ** any number", () => {
  assert.ok(matchEvent("orders.created", "orders.created"));
  assert.ok(!matchEvent("orders.created", "orders.deleted"));
  assert.ok(matchEvent("deploy.*", "deploy.done"));
  assert.ok(!matchEvent("deploy.*", "deploy"));
  assert.ok(!matchEvent("deploy.*", "deploy.done.late"));
  assert.ok(matchEvent("*.created", "users.created"));
  assert.ok(matchEvent("orca.**", "orca.service.deployed"));
  assert.ok(matchEvent("orca.**", "orca"));
  assert.ok(matchEvent("**.failed", "orca.service.failed"));
  assert.ok(matchEvent("**", "anything.at.all"));
  assert.ok(!matchEvent("orca.*.deployed", "orca.service.x.deployed"));
  assert.ok(validEventName("orders.created"));
  assert.ok(!validEventName("orders..created"));
  assert.ok(!validEventName("orders.*"));
});

Deno.test("retry backoff doubles up to the cap", () => {
  const policy = { maxAttempts: 10, baseMs: 100, maxMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, policy)), [100, 200, 400, 800, 1000, 1000]);
});
