import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLinearizable, type Operation } from "./linearizability.ts";

const put = (key: string, value: string, invoke: number, response?: number): Operation => ({
  key,
  kind: "put",
  value,
  invoke,
  ...(response !== undefined && { response }),
});
const get = (key: string, output: string | null, invoke: number, response?: number): Operation => ({
  key,
  kind: "get",
  output,
  invoke,
  ...(response !== undefined && { response }),
});

Deno.test("classic cases", () => {
  assert.deepEqual(checkLinearizable([put("x", "1", 0, 1), get("x", "1", 2, 3)]), { ok: true });
  // A read after a completed write returns the old value: stale read.
  assert.deepEqual(checkLinearizable([put("x", "1", 0, 1), get("x", null, 2, 3)]), { ok: false, key: "x" });
  // Concurrent with the write, either value is fine.
  assert.deepEqual(checkLinearizable([put("x", "1", 0, 5), get("x", null, 1, 2), get("x", "1", 3, 4)]), { ok: true });
  // But not new-then-old in real-time order.
  assert.deepEqual(checkLinearizable([put("x", "1", 0, 10), get("x", "1", 1, 2), get("x", null, 3, 4)]), {
    ok: false,
    key: "x",
  });
  // A timed-out write may take effect later...
  assert.deepEqual(checkLinearizable([put("x", "1", 0), get("x", null, 1, 2), get("x", "1", 5, 6)]), { ok: true });
  // ...or never.
  assert.deepEqual(checkLinearizable([put("x", "1", 0), get("x", null, 5, 6)]), { ok: true });
  // A value nobody wrote is never linearizable.
  assert.deepEqual(checkLinearizable([put("y", "1", 0, 1), get("y", "2", 2, 3)]), { ok: false, key: "y" });
  // Keys are independent.
  assert.deepEqual(checkLinearizable([put("a", "1", 0, 1), get("b", null, 2, 3)]), { ok: true });
});

/** Histories from a real register: each operation takes effect at a random instant within its interval. */
const historyArb = fc.array(
  fc.record({
    kind: fc.constantFrom("put" as const, "get" as const),
    key: fc.constantFrom("a", "b"),
    start: fc.integer({ min: 0, max: 100 }),
    length: fc.integer({ min: 1, max: 20 }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    lost: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  }),
  { maxLength: 14 },
).map((specs) => {
  const ops = specs.map((s, i) => ({ ...s, id: i, effect: s.start + s.at * s.length }));
  const state = new Map<string, string | null>();
  const history: Operation[] = [];
  for (const o of [...ops].sort((a, b) => a.effect - b.effect)) {
    if (o.kind === "put") {
      const value = `v${o.id}`;
      state.set(o.key, value);
      history.push({
        key: o.key,
        kind: "put",
        value,
        invoke: o.start,
        ...(!o.lost && { response: o.start + o.length }),
      });
    } else {
      history.push({
        key: o.key,
        kind: "get",
        output: state.get(o.key) ?? null,
        invoke: o.start,
        response: o.start + o.length,
      });
    }
  }
  return history;
});

Deno.test("property: histories of a real register are linearizable", () => {
  fc.assert(fc.property(historyArb, (h) => checkLinearizable(h).ok), { numRuns: 300 });
});

Deno.test("property: a read of a value never written makes any history non-linearizable", () => {
  fc.assert(
    fc.property(historyArb.filter((h) => h.some((o) => o.kind === "get")), (h) => {
      const i = h.findIndex((o) => o.kind === "get");
      const bad = h.map((o, j) => j === i ? { ...o, output: "never-written" } : o);
      return !checkLinearizable(bad).ok;
    }),
    { numRuns: 300 },
  );
});
