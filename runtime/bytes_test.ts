import assert from "node:assert/strict";
import { fromBase64, toBase64 } from "./bytes.ts";
import { messageEnv } from "./docker/util.ts";

Deno.test("base64 round-trips large bodies (a 1 MiB message is no stack overflow)", () => {
  const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + 0xff) & 0xff);
  const text = toBase64(big);
  assert.equal(text, btoa(Array.from(big, (b) => String.fromCharCode(b)).join("")));
  assert.deepEqual(fromBase64(text), big);
  assert.throws(() => fromBase64("not base64 !"));
});

Deno.test("a container job's message that is not UTF-8 comes in base64, however large", () => {
  const bytes = new Uint8Array(1024 * 1024).fill(0xff); // never valid UTF-8
  const env = messageEnv(bytes);
  assert.equal(env.ORCA_MESSAGE, undefined);
  assert.deepEqual(fromBase64(env.ORCA_MESSAGE_BASE64), bytes);
});
