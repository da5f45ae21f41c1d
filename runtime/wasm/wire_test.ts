import assert from "node:assert/strict";
import { decodeBody, encodeFrame, FrameSender, MAX_FRAME, readFrames } from "./wire.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

async function all(input: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of readFrames(input)) out.push(v);
  return out;
}

Deno.test("wire: values round-trip, byte arrays raw wherever they sit (nested, in arrays, empty)", () => {
  const value = {
    op: "http",
    id: 7,
    req: { method: "POST", headers: [["a", "1"]], body: bytes(1, 2, 3), none: null },
    list: [bytes(), "x", [bytes(9)], { deep: { b: bytes(4, 5) } }],
    text: "é ✓",
  };
  const frame = encodeFrame(value);
  const decoded = decodeBody(frame.subarray(4)) as typeof value;
  assert.deepEqual(decoded, value);
  assert.ok(decoded.req.body instanceof Uint8Array);
  assert.equal(decoded.list[0] instanceof Uint8Array, true);
  // The caller's value is untouched (the markers went into copies).
  assert.ok(value.req.body instanceof Uint8Array);
  assert.ok((value.list[2] as Uint8Array[])[0] instanceof Uint8Array);
});

Deno.test("wire: a frame without byte arrays says so and decodes by JSON alone; one with them sets the flag", () => {
  const plain = encodeFrame({ op: "stats", workload: "p/x@1", n: [1, 2] });
  assert.equal(new DataView(plain.buffer).getUint32(4) >>> 31, 0);
  assert.deepEqual(decodeBody(plain.subarray(4)), { op: "stats", workload: "p/x@1", n: [1, 2] });
  const withBytes = encodeFrame({ body: bytes(1) });
  assert.equal(new DataView(withBytes.buffer).getUint32(4) >>> 31, 1);
  // A look-alike marker in a frame without byte arrays stays a plain object.
  assert.deepEqual(decodeBody(encodeFrame({ $bin: [0, 1] }).subarray(4)), { $bin: [0, 1] });
});

Deno.test("wire: frames split anywhere across reads come out whole and in order", async () => {
  const frames = [encodeFrame({ a: 1, b: bytes(1, 2) }), encodeFrame({ c: "x".repeat(70_000) }), encodeFrame(3)];
  const joined = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) joined.set(f, (at += f.length) - f.length);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < joined.length; i += 1000 + (i % 7)) chunks.push(joined.slice(i, i + 1000 + (i % 7)));
  assert.deepEqual(await all(streamOf(chunks)), [{ a: 1, b: bytes(1, 2) }, { c: "x".repeat(70_000) }, 3]);
});

Deno.test("wire: hostile frames are refused with an error, not read past their bounds", async () => {
  const huge = new Uint8Array(8);
  new DataView(huge.buffer).setUint32(0, MAX_FRAME + 1);
  await assert.rejects(() => all(streamOf([huge])), /over the .*-byte limit/);
  // A marker pointing past the frame's bytes.
  const json = new TextEncoder().encode(JSON.stringify({ body: { $bin: [1, 50] } }));
  const forged = new Uint8Array(4 + json.length + 2);
  new DataView(forged.buffer).setUint32(0, json.length | 0x8000_0000);
  forged.set(json, 4);
  assert.throws(() => decodeBody(forged), /outside the frame/);
  // A JSON length longer than the frame.
  const short = new Uint8Array(6);
  new DataView(short.buffer).setUint32(0, 100);
  assert.throws(() => decodeBody(short), /shorter than its JSON/);
});

Deno.test("wire: frames sent in one turn go out in one write, in order; each send settles once written", async () => {
  const writes: Uint8Array[] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => release = r);
  const conn = {
    async write(bytes: Uint8Array) {
      await gate;
      const n = Math.min(bytes.length, 5000); // a short write: the rest must follow
      writes.push(bytes.slice(0, n));
      return n;
    },
  };
  const sender = new FrameSender(conn);
  const first = [sender.send({ n: 1 }), sender.send({ n: 2, body: bytes(7) })];
  const later = new Promise((r) => setTimeout(r, 5)).then(() => sender.send({ n: 3, big: "y".repeat(9000) }));
  await new Promise((r) => setTimeout(r, 10));
  release();
  gate = Promise.resolve();
  await Promise.all([...first, later]);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const w of writes) c.enqueue(w);
      c.close();
    },
  });
  assert.deepEqual(await all(stream), [{ n: 1 }, { n: 2, body: bytes(7) }, { n: 3, big: "y".repeat(9000) }]);
  assert.equal(writes.length, 3, "frames 1 and 2 in one write; frame 3 (over 5000 bytes) in two");
  // A connection that broke fails the sends of the write it broke in.
  const broken = new FrameSender({ write: () => Promise.reject(new Error("broken pipe")) });
  await assert.rejects(broken.send({ n: 4 }), /broken pipe/);
});
