import assert from "node:assert/strict";
import { clipLine, LogBuffer } from "./logs.ts";

async function texts(buffer: LogBuffer, opts: Parameters<LogBuffer["read"]>[0] = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const line of buffer.read(opts)) out.push(line.text);
  return out;
}

Deno.test("a log keeps its last lines, in order, however many were appended", async () => {
  const log = new LogBuffer(3, () => 0);
  assert.deepEqual(await texts(log), []);
  log.append("stdout", "a");
  log.append("stdout", "b");
  assert.deepEqual(await texts(log), ["a", "b"]);
  for (const t of ["c", "d", "e", "f", "g"]) log.append("stderr", t);
  assert.deepEqual(await texts(log), ["e", "f", "g"]);
  assert.deepEqual(await texts(log, { tail: 2 }), ["f", "g"]);
  assert.deepEqual(await texts(log, { tail: 10 }), ["e", "f", "g"]);
  assert.deepEqual(await texts(log, { tail: 0 }), []);
  const one = new LogBuffer(1);
  one.append("stdout", "x");
  one.append("stdout", "y");
  assert.deepEqual(await texts(one), ["y"]);
});

Deno.test("a follower gets lines as they come; one that falls behind skips what was overwritten; close ends it", async () => {
  const log = new LogBuffer(4, () => 0);
  log.append("stdout", "first");
  const got: string[] = [];
  const reader = log.read({ follow: true });
  const following = (async () => {
    for await (const line of reader) {
      got.push(line.text);
      if (line.text === "slow") await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await new Promise((r) => setTimeout(r, 5));
  log.append("stdout", "slow");
  await new Promise((r) => setTimeout(r, 5));
  // While the reader sleeps, ten more lines: six of them are gone from the ring before it reads again.
  for (let i = 0; i < 10; i++) log.append("stdout", `n${i}`);
  await new Promise((r) => setTimeout(r, 40));
  log.close();
  await following;
  assert.deepEqual(got, ["first", "slow", "n6", "n7", "n8", "n9"]);
});

Deno.test("a line past the longest kept is cut and says so", () => {
  const long = "x".repeat(20_000);
  assert.match(clipLine(long), /… \(truncated\)$/);
  assert.equal(clipLine("short"), "short");
});
