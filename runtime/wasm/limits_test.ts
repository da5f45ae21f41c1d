import assert from "node:assert/strict";
import initWabt from "wabt";
import { capMemory, PAGE } from "./limits.ts";

const wabt = await initWabt();
const wat = (text: string) => {
  const m = wabt.parseWat("t.wat", text);
  try {
    return m.toBinary({}).buffer as Uint8Array;
  } finally {
    m.destroy();
  }
};

Deno.test("a defined memory gets a maximum; growth past it fails inside the guest", async () => {
  const bytes = wat(
    `(module (memory (export "memory") 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`,
  );
  const { instance } = await WebAssembly.instantiate(capMemory(bytes, 4) as Uint8Array<ArrayBuffer>);
  const grow = instance.exports.grow as (n: number) => number;
  assert.equal(grow(2), 2); // 2 -> 4 pages: allowed
  assert.equal(grow(1), -1); // past the cap: memory.grow fails, no trap, no host impact
  assert.equal((instance.exports.memory as WebAssembly.Memory).buffer.byteLength, 4 * PAGE);
});

Deno.test("a smaller existing maximum is kept; other sections are untouched", async () => {
  const bytes = wat(`(module (memory (export "memory") 1 3) (global (export "g") i32 (i32.const 42)))`);
  const capped = capMemory(bytes, 100);
  const { instance } = await WebAssembly.instantiate(capped as Uint8Array<ArrayBuffer>);
  assert.equal((instance.exports.g as WebAssembly.Global).value, 42);
  assert.equal((instance.exports.memory as WebAssembly.Memory).grow(2), 1);
  assert.throws(() => (instance.exports.memory as WebAssembly.Memory).grow(1));
});

Deno.test("a module that needs more than the cap at start is refused", () => {
  const bytes = wat(`(module (memory 10))`);
  assert.throws(() => capMemory(bytes, 4), /needs 0\.625 MiB of memory at start/);
});
