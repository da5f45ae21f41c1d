import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError, decodeFrame, encodeFrame } from "./codec.ts";
import type { Message } from "./messages.ts";
import type { Entry } from "./types.ts";

const id = fc.string({ minLength: 1, maxLength: 12 });
const num = fc.oneof(fc.nat(1000), fc.constant(Number.MAX_SAFE_INTEGER), fc.nat());
const round = fc.option(num, { nil: undefined });
const bytes = fc.uint8Array({ maxLength: 300 });

const entry: fc.Arbitrary<Entry> = fc.record({
  index: num,
  term: num,
  kind: fc.constantFrom("normal", "noop", "config"),
  data: bytes,
  client: fc.option(id, { nil: undefined }),
  seq: fc.option(num, { nil: undefined }),
}).map(({ client, seq, ...e }) => ({
  ...e,
  ...(client !== undefined && { client }),
  ...(seq !== undefined && { seq }),
}));

const head = { from: id, to: id, term: num };
const withRound = <T extends object>(m: T, r: number | undefined) => r === undefined ? m : { ...m, round: r };

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ ...head, lastIndex: num, lastTerm: num, transfer: fc.boolean() }).map(({ transfer, ...m }) => ({
    type: "vote" as const,
    ...m,
    ...(transfer && { transfer }),
  })),
  fc.record({ ...head, lastIndex: num, lastTerm: num }).map((m) => ({ type: "pre-vote" as const, ...m })),
  fc.record(head).map((m) => ({ type: "timeout-now" as const, ...m })),
  fc.record({ ...head, granted: fc.boolean() }).map((m) => ({ type: "vote-response" as const, ...m })),
  fc.record({ ...head, granted: fc.boolean() }).map((m) => ({ type: "pre-vote-response" as const, ...m })),
  fc.record({ ...head, prevIndex: num, prevTerm: num, entries: fc.array(entry, { maxLength: 5 }), commit: num, round })
    .map(({ round, ...m }) => withRound({ type: "append" as const, ...m }, round)),
  fc.record({
    ...head,
    round,
    snapshot: fc.record({
      index: num,
      term: num,
      data: bytes,
      config: fc.record({
        voters: fc.array(id, { maxLength: 5 }),
        outgoing: fc.option(fc.array(id, { maxLength: 5 }), { nil: undefined }),
        learners: fc.array(id, { maxLength: 3 }),
      }).map(({ outgoing, ...c }) => ({ ...c, ...(outgoing && { outgoing }) })),
    }).map((s) => ({ ...s })),
  }).map(({ round, ...m }) => withRound({ type: "snapshot" as const, ...m }, round)),
  fc.record({ ...head, success: fc.boolean(), index: num, round }).map(({ round, ...m }) =>
    withRound({ type: "append-response" as const, ...m }, round)
  ),
  fc.record({ ...head, ctx: fc.string({ maxLength: 40 }) }).map((m) => ({ type: "read-index" as const, ...m })),
  fc.record({ ...head, ctx: fc.string({ maxLength: 40 }), index: num }).map((m) => ({
    type: "read-index-response" as const,
    ...m,
  })),
);

Deno.test("every message kind survives a frame unchanged, bytes as bytes", () => {
  fc.assert(
    fc.property(fc.array(message, { maxLength: 8 }), (messages) => {
      assert.deepEqual(decodeFrame(encodeFrame(messages)), messages);
    }),
    { numRuns: 500 },
  );
});

Deno.test("a snapshot's bytes travel as bytes, not as JSON numbers", () => {
  const data = new Uint8Array(64 * 1024).map((_, i) => i % 251);
  const m: Message = {
    type: "snapshot",
    from: "n1",
    to: "n2",
    term: 3,
    snapshot: { index: 9, term: 3, config: { voters: ["n1", "n2"], learners: [] }, data },
  };
  const frame = encodeFrame([m]);
  assert.ok(frame.length < data.length + 64, `frame of ${frame.length} bytes for ${data.length} bytes of data`);
  const [back] = decodeFrame(frame);
  assert.ok(back.type === "snapshot" && back.snapshot.data instanceof Uint8Array);
  assert.deepEqual(back, m);
});

Deno.test("a frame that is not an encoding is refused with a CodecError, never misread", () => {
  const good = encodeFrame([{ type: "timeout-now", from: "n1", to: "n2", term: 4 }]);
  for (const bad of [new Uint8Array([1, 99]), good.subarray(0, good.length - 1), new Uint8Array([...good, 0])]) {
    assert.throws(() => decodeFrame(bad), CodecError);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
      try {
        decodeFrame(junk);
      } catch (err) {
        assert.ok(err instanceof CodecError, String(err));
      }
    }),
  );
});

Deno.test("a follower's read-index request and the leader's answer carry the read's context and index", () => {
  const asked: Message = { type: "read-index", from: "n2", to: "n1", term: 7, ctx: "r\u00e9ad:42" };
  const answer: Message = {
    type: "read-index-response",
    from: "n1",
    to: "n2",
    term: 7,
    ctx: "r\u00e9ad:42",
    index: 2 ** 40,
  };
  assert.deepEqual(decodeFrame(encodeFrame([asked, answer])), [asked, answer]);
});
