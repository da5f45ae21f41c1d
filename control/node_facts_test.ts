import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";
import { checkFacts, localFacts, parseLabels, sameFacts } from "./node_facts.ts";

Deno.test("--labels: key=value pairs, checked, each error naming the label", () => {
  assert.deepEqual(parseLabels("zone=eu-1, role=gpu,tier="), { zone: "eu-1", role: "gpu", tier: "" });
  assert.deepEqual(parseLabels(""), {});
  for (
    const [text, why] of [
      ["zone", /"zone" is not key=value/],
      ["=x", /label key ""/],
      ["-zone=a", /label key "-zone"/],
      ["zone=a b", /zone's value "a b"/],
      ["zone=a,zone=b", /zone given twice/],
      [`k=${"v".repeat(64)}`, /at most 63/],
      [Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","), /at most 32 labels/],
    ] as const
  ) {
    assert.throws(() => parseLabels(text), (e: unknown) => e instanceof OrcaError && why.test(e.message), text);
  }
});

Deno.test("facts sent to the API are checked field by field; hostile ones are refused naming the field", () => {
  const good = {
    labels: { zone: "eu-1" },
    capacity: { memory: 8 * 2 ** 30, cpuMillis: 4000 },
    gpus: [{ vendor: "nvidia", count: 2, model: "H100", vram: 81559 }],
  };
  assert.deepEqual(checkFacts({ ...good, extra: "ignored" }), good);
  for (
    const [facts, field] of [
      [null, /facts/],
      [[], /facts/],
      [{ ...good, labels: [] }, /labels/],
      [{ ...good, labels: { "bad key": "v" } }, /labels/],
      [{ ...good, labels: { zone: 1 } }, /labels/],
      [{ ...good, capacity: { memory: -1, cpuMillis: 1000 } }, /capacity/],
      [{ ...good, capacity: { memory: 1, cpuMillis: 1.5 } }, /capacity/],
      [{ ...good, capacity: { memory: 1, cpuMillis: 1e12 } }, /capacity/],
      [{ ...good, gpus: {} }, /gpus/],
      [{ ...good, gpus: [{ vendor: "intel", count: 1 }] }, /gpus\[0\]/],
      [{ ...good, gpus: [{ vendor: "amd", count: 1, model: "x".repeat(200) }] }, /gpus\[0\]/],
      [{ ...good, gpus: Array.from({ length: 17 }, () => ({ vendor: "amd", count: 1 })) }, /gpus/],
      [{ ...good, labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "v"])) }, /labels/],
    ] as const
  ) {
    assert.throws(
      () => checkFacts(facts),
      (e: unknown) => e instanceof OrcaError && e.code === "invalid" && field.test(e.message),
      JSON.stringify(facts)?.slice(0, 80),
    );
  }
});

Deno.test("this machine's facts are its cores and memory; the same facts compare equal in any label order", () => {
  const facts = localFacts({ b: "2", a: "1" }, []);
  assert.equal(facts.capacity.cpuMillis, navigator.hardwareConcurrency * 1000);
  assert.ok(facts.capacity.memory > 0);
  assert.ok(sameFacts(facts, { ...facts, labels: { a: "1", b: "2" } }));
  assert.ok(!sameFacts(facts, { ...facts, labels: { a: "1" } }));
  assert.ok(!sameFacts(undefined, facts));
});
