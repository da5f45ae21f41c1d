/**
 * The simulator as a test: many seeds under drops, duplicates, reordering and
 * crashes, every safety invariant after every step, then liveness once healed.
 * And proof that the harness bites: classic bugs put back are caught.
 */

import assert from "node:assert/strict";
import { allFaults, InvariantViolation, type SimOptions, Simulation } from "./sim.ts";

/** The faults of the first slice: drops, duplicates, reordering, crashes, partitions. */
const faults: SimOptions = { nodes: 5, drop: 0.1, duplicate: 0.05, crash: 0.01, partition: 0.005 };

function run(seed: number, steps: number, opts = faults): { settled: boolean } {
  const sim = new Simulation(seed, opts);
  for (let i = 0; i < steps; i++) sim.step();
  const settled = sim.settle(20_000);
  sim.checkHistory();
  return { settled };
}

Deno.test("500 seeds under every fault: safety after every step, linearizable client histories, recovery once healed", () => {
  for (let seed = 1; seed <= 500; seed++) {
    try {
      const { settled } = run(seed, 3000, allFaults);
      assert.ok(settled, `seed ${seed}: no stable leader with everything applied after healing`);
    } catch (err) {
      if (err instanceof InvariantViolation) assert.fail(`seed ${seed}: ${err.message}`);
      throw err;
    }
  }
});

Deno.test("the same seed replays exactly", () => {
  const a = new Simulation(42, faults), b = new Simulation(42, faults);
  for (let i = 0; i < 2000; i++) {
    a.step();
    b.step();
  }
  for (const id of a.ids) {
    assert.deepEqual(a.nodes.get(id)!.raft.log, b.nodes.get(id)!.raft.log);
    assert.equal(a.nodes.get(id)!.raft.term, b.nodes.get(id)!.raft.term);
  }
});

// "commit-old-term" (Figure 8 of the Raft paper) and a stale read from a deposed leader are not found by random
// schedules in 1,000 seeds yet: they need scripted schedules, which come with the rest of the bug list (issue 6).
for (const bug of ["vote-without-log-check"] as const) {
  Deno.test(`the harness catches a re-introduced bug within 1,000 seeds: ${bug}`, () => {
    for (let seed = 1; seed <= 1000; seed++) {
      try {
        run(seed, 1500, { ...faults, bug });
      } catch (err) {
        if (err instanceof InvariantViolation) return; // caught
        throw err;
      }
    }
    assert.fail(`${bug} was not caught in 1,000 seeds`);
  });
}

Deno.test("pre-vote: a node cut off and back does not depose a healthy leader", () => {
  const sim = new Simulation(7, { nodes: 3, drop: 0, duplicate: 0, crash: 0 });
  // Let a leader emerge and settle.
  assert.ok(sim.settle(20_000));
  const leader = [...sim.nodes.values()].find((n) => n.raft.role === "leader")!.raft;
  const term = leader.term;
  const outsider = sim.ids.find((id) => id !== leader.id)!;
  // Cut the outsider off long enough to time out many times, then heal.
  sim.side = new Set([outsider]);
  for (let i = 0; i < 3000; i++) sim.step(false, false);
  const cutOff = sim.nodes.get(outsider)!.raft;
  assert.equal(cutOff.term, term, "pre-votes fail, so its term does not grow");
  sim.side = undefined;
  for (let i = 0; i < 3000; i++) sim.step(false, false);
  assert.equal(leader.role, "leader");
  assert.equal(leader.term, term, "the leader was not deposed");
});

Deno.test("check-quorum: a leader cut off from its quorum steps down", () => {
  const sim = new Simulation(11, { nodes: 5, drop: 0, duplicate: 0, crash: 0 });
  assert.ok(sim.settle(20_000));
  const leader = [...sim.nodes.values()].find((n) => n.raft.role === "leader")!.raft;
  sim.side = new Set([leader.id]);
  for (let i = 0; i < 5000; i++) sim.step(false, false);
  assert.notEqual(leader.role, "leader");
  const others = [...sim.nodes.values()].filter((n) => n.raft.id !== leader.id);
  assert.ok(
    others.some((n) => n.raft.role === "leader" && n.raft.term > leader.term - 1),
    "the majority elected a new leader",
  );
});

Deno.test("client histories are recorded and answered: reads through ReadIndex, writes through the log", () => {
  const sim = new Simulation(5, faults);
  for (let i = 0; i < 1500; i++) sim.step();
  assert.ok(sim.settle(20_000));
  const gets = sim.history.filter((o) => o.kind === "get" && o.response !== undefined);
  const puts = sim.history.filter((o) => o.kind === "put" && o.response !== undefined);
  assert.ok(gets.length > 0 && puts.length > 0, `${gets.length} reads and ${puts.length} writes answered`);
  assert.ok(gets.some((g) => g.output !== null), "some reads saw a write");
  sim.checkHistory();
});

Deno.test("leadership transfer: the chosen follower leads the next term", () => {
  const sim = new Simulation(3, { nodes: 3, drop: 0, duplicate: 0, crash: 0 });
  assert.ok(sim.settle(20_000));
  const old = [...sim.nodes.values()].find((n) => n.raft.role === "leader")!.raft;
  const target = sim.ids.find((id) => id !== old.id)!;
  assert.ok(old.transferLeadership(target));
  assert.equal(old.propose(new Uint8Array([1])), undefined, "proposals pause during a transfer");
  for (let i = 0; i < 2000 && sim.nodes.get(target)!.raft.role !== "leader"; i++) sim.step(false, false);
  const now = sim.nodes.get(target)!.raft;
  assert.equal(now.role, "leader");
  assert.equal(now.term, old.term, "the old leader followed into the new term");
  assert.notEqual(old.role, "leader");
});

Deno.test("learners replicate everything, never lead, never count for quorum", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const sim = new Simulation(seed, { ...faults, nodes: 3, learners: 2 });
    for (let i = 0; i < 1500; i++) sim.step();
    assert.ok(sim.settle(20_000), `seed ${seed}`);
    sim.checkHistory();
    const leader = [...sim.nodes.values()].find((n) => n.raft.role === "leader")!;
    for (const id of ["l1", "l2"]) {
      assert.equal(sim.nodes.get(id)!.applied, leader.raft.commit, `${id} caught up`);
    }
  }
  // Two voters out of three down: no quorum, even with both learners up.
  const sim = new Simulation(9, { nodes: 3, learners: 2, drop: 0, duplicate: 0, crash: 0 });
  assert.ok(sim.settle(20_000));
  const leader = [...sim.nodes.values()].find((n) => n.raft.role === "leader")!.raft;
  sim.side = new Set([leader.id, "l1", "l2"]); // the leader with both learners, cut off from the other voters
  const commit = leader.commit;
  leader.propose(new TextEncoder().encode(JSON.stringify({ id: "x", key: "a", value: "x" })));
  for (let i = 0; i < 3000; i++) sim.step(false, false);
  assert.equal(leader.commit, commit, "learners' acks do not commit");
});
