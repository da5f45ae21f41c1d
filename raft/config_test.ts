import assert from "node:assert/strict";
import {
  decodeConfig,
  encodeConfig,
  hasQuorum,
  isVoter,
  leaveJoint,
  members,
  planChange,
  quorumIndex,
  startChange,
} from "./config.ts";
import type { Config } from "./types.ts";

const simple: Config = { voters: ["a", "b", "c"], learners: ["l"] };
/** Moving from {a, b, c} to {c, d, e}. */
const joint: Config = { voters: ["c", "d", "e"], outgoing: ["a", "b", "c"], learners: [] };

Deno.test("a simple config decides by a majority of its voters; learners never count", () => {
  assert.ok(hasQuorum(simple, (id) => id === "a" || id === "b"));
  assert.ok(!hasQuorum(simple, (id) => id === "a" || id === "l"));
  assert.equal(quorumIndex(simple, (id) => ({ a: 5, b: 3, c: 1, l: 9 })[id]!), 3);
  assert.ok(isVoter(simple, "a") && !isVoter(simple, "l"));
  assert.deepEqual(members(simple), ["a", "b", "c", "l"]);
});

Deno.test("a joint config needs a majority of each voter set, not of their union", () => {
  // c, d, e: all of C_new, but one of C_old.
  const newSide = (id: string) => ["c", "d", "e"].includes(id);
  assert.ok(!hasQuorum(joint, newSide));
  assert.ok(hasQuorum(joint, newSide, "joint-quorum-union"), "the classic mistake says yes");
  assert.ok(hasQuorum(joint, (id) => ["b", "c", "d"].includes(id)));
  // The index a majority of each has: min(C_old's 2nd highest, C_new's 2nd highest).
  const match = (id: string) => ({ a: 2, b: 2, c: 9, d: 9, e: 9 })[id]!;
  assert.equal(quorumIndex(joint, match), 2);
  assert.equal(quorumIndex(joint, match, "joint-quorum-union"), 9);
  assert.ok(isVoter(joint, "a") && isVoter(joint, "e"));
});

Deno.test("a change of voters goes through a joint config; a change of learners alone does not", () => {
  const base: Config = { voters: ["a", "b", "c"], learners: ["d"] };
  const promote = startChange(base, { voters: ["a", "b", "c", "d"] });
  assert.deepEqual(promote, { voters: ["a", "b", "c", "d"], outgoing: ["a", "b", "c"], learners: [] });
  assert.deepEqual(leaveJoint(promote), { voters: ["a", "b", "c", "d"], learners: [] });
  const demote = startChange(base, { voters: ["a", "b"], learners: ["c", "d"] });
  assert.deepEqual(demote.outgoing, ["a", "b", "c"], "c still votes in C_old while joint");
  assert.deepEqual(startChange(base, { voters: ["c", "b", "a"], learners: ["e"] }), {
    voters: ["a", "b", "c"],
    learners: ["e"],
  });
});

Deno.test("one change at a time, and only a real one", () => {
  const change = { voters: ["a", "b"] };
  assert.match(planChange(simple, 7, 6, change) as string, /index 7 is not committed/);
  assert.match(planChange(joint, 3, 6, change) as string, /joint config has not been left/);
  assert.match(planChange(simple, 3, 6, { voters: [] }) as string, /at least one voter/);
  assert.match(planChange(simple, 3, 6, { voters: ["a", "b", "c"], learners: ["l"] }) as string, /already/);
  assert.deepEqual(planChange(simple, 3, 6, change), { voters: ["a", "b"], outgoing: ["a", "b", "c"], learners: [] });
});

Deno.test("config entries round-trip", () => {
  assert.deepEqual(decodeConfig(encodeConfig(joint)), joint);
  assert.deepEqual(decodeConfig(encodeConfig(simple)), simple);
});
