import assert from "node:assert/strict";
import type { Entry } from "../raft/mod.ts";
import { type ControlCommand, ControlMachine, encodeCommand } from "./machine.ts";
import { Store } from "./store.ts";

const entry = (index: number, command: ControlCommand | string): Entry => ({
  index,
  term: 1,
  kind: "normal",
  data: typeof command === "string" ? new TextEncoder().encode(command) : encodeCommand(command),
});

Deno.test("a command that fails is undone alone and answered as failed; the entries around it apply", async () => {
  const store = new Store(`${await Deno.makeTempDir({ prefix: "orca-machine-" })}/orca.db`);
  const machine = new ControlMachine(store);
  const publish = (bodies: string[]): ControlCommand => ({
    type: "queue-publish",
    topic: "t",
    bodies,
    meta: {},
    at: 1,
  });
  const results = machine.applyAll([
    entry(1, publish(["YQ=="])),
    entry(2, publish(["YQ==", "not base64 !"])), // fails after its first message is written: undone whole
    entry(3, "{not json"),
    entry(4, publish(["Yg=="])),
  ]);
  assert.deepEqual(results.map((r) => r.ok), [true, false, false, true]);
  assert.deepEqual(results[0], { ok: true, value: [1] });
  assert.equal(machine.applied(), 4, "the failed entries are applied (as failures) like any other");
  const kept = machine.snapshot();
  const state = JSON.parse(new TextDecoder().decode(kept));
  assert.deepEqual(state.queues.messages.map((m: { body: string }) => atob(m.body)), ["a", "b"]);
  store.close();
});
