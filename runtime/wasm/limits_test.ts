import assert from "node:assert/strict";
import { capMemory, importMainMemory, PAGE } from "./limits.ts";
import { wat } from "./test_util.ts";

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

Deno.test("importMainMemory: the memory becomes an import at index 0, its data and code unchanged", () => {
  const bytes = wat(`(module
    (import "env" "f" (func $f (result i32)))
    (import "env" "t" (table 1 funcref))
    (import "env" "g" (global i32))
    (memory (export "memory") 1 4)
    (data (i32.const 16) "hi")
    (func (export "read") (result i32) (i32.load8_u (i32.const 17)))
    (func (export "call") (result i32) (call $f)))`);
  const rewritten = importMainMemory(bytes)!;
  assert.deepEqual(rewritten.limits, { min: 1, max: 4 });
  const module = new WebAssembly.Module(rewritten.module as Uint8Array<ArrayBuffer>);
  assert.deepEqual(
    WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}:${i.kind}`),
    ["env.f:function", "env.t:table", "env.g:global", "orca.memory:memory"],
  );
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  new Uint8Array(memory.buffer).fill(9); // a recycled memory is zeroed first; the data segment lands either way
  const instance = new WebAssembly.Instance(module, {
    env: { f: () => 7, t: new WebAssembly.Table({ initial: 1, element: "anyfunc" }), g: 1 },
    orca: { memory },
  });
  assert.equal(instance.exports.memory, memory, "the module exports the memory it was given");
  assert.equal((instance.exports.read as () => number)(), "i".charCodeAt(0));
  assert.equal((instance.exports.call as () => number)(), 7);
});

Deno.test("importMainMemory: a module without imports gets an import section; one with no memory is left alone", () => {
  const rewritten = importMainMemory(wat(`(module (type (func)) (memory 2))`))!;
  assert.deepEqual(rewritten.limits, { min: 2, max: undefined });
  const module = new WebAssembly.Module(rewritten.module as Uint8Array<ArrayBuffer>);
  assert.deepEqual(WebAssembly.Module.imports(module), [{ module: "orca", name: "memory", kind: "memory" }]);
  assert.equal(importMainMemory(wat(`(module (func))`)), undefined);
  assert.equal(importMainMemory(wat(`(module (import "a" "m" (memory 1)) (memory 1))`)), undefined);
});
