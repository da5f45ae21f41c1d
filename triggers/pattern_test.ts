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

Deno.test("event matching is linear: many ** against a long name answers at once", () => {
  const pattern = Array(9).fill("**").concat("z").join(".");
  const miss = Array(40).fill("a").join(".");
  const started = performance.now();
  assert.ok(!matchEvent(pattern, miss));
  assert.ok(matchEvent(pattern, `${miss}.z`));
  assert.ok(matchEvent("**.**.a.**", "a"));
  assert.ok(!matchEvent("**.**.a.**.b", "a"));
  assert.ok(matchEvent("a.**.*", "a.b"));
  assert.ok(!matchEvent("a.**.*", "a"));
  // The backtracking matcher took 3.7 s for this; the bound is loose enough for any machine.
  assert.ok(performance.now() - started < 500, "matching must not backtrack");
});

Deno.test("event matching agrees with a plain recursive matcher", () => {
  const words = ["a", "b", "*", "**"];
  const reference = (p: string[], n: string[]): boolean => {
    if (p.length === 0) return n.length === 0;
    if (p[0] === "**") return n.some((_, k) => reference(p.slice(1), n.slice(k))) || reference(p.slice(1), []);
    return n.length > 0 && (p[0] === "*" || p[0] === n[0]) && reference(p.slice(1), n.slice(1));
  };
  const all = (alphabet: string[], max: number): string[][] => {
    const out: string[][] = [[]];
    for (let len = 1; len <= max; len++) {
      for (const prefix of out.filter((x) => x.length === len - 1)) for (const w of alphabet) out.push([...prefix, w]);
    }
    return out.filter((x) => x.length > 0);
  };
  for (const p of all(words, 4)) {
    for (const n of all(["a", "b"], 4)) {
      assert.equal(matchEvent(p.join("."), n.join(".")), reference(p, n), `${p.join(".")} vs ${n.join(".")}`);
    }
  }
});

Deno.test("event names: a length limit", () => {
  assert.ok(validEventName("a".repeat(200)));
  assert.ok(!validEventName("a".repeat(201)));
});
