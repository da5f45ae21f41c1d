import assert from "node:assert/strict";
import { instrumentInterrupts, INTERRUPT_EXPORT } from "./instrument.ts";
import { wat } from "./test_util.ts";

const spin = wat(`(module
  (memory (export "memory") 1)
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (block $done (loop $again
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $again)))
    (local.get $i))
  (func (export "spin") (loop $forever (br $forever))))`);

async function load(bytes: Uint8Array) {
  const instrumented = instrumentInterrupts(bytes);
  assert.ok(instrumented, "instrumented");
  const { instance } = await WebAssembly.instantiate(instrumented as Uint8Array<ArrayBuffer>);
  const flag = instance.exports[INTERRUPT_EXPORT] as WebAssembly.Memory;
  return { exports: instance.exports, flag: new Int32Array(flag.buffer) };
}

Deno.test("instrumented code runs as before while the flag is clear", async () => {
  const { exports } = await load(spin);
  assert.equal((exports.count as (n: number) => number)(1000), 1000);
  assert.equal((exports.memory as WebAssembly.Memory).buffer.byteLength, 65536);
});

Deno.test("with the flag set, the guest traps at its next check", async () => {
  const { exports, flag } = await load(spin);
  Atomics.store(flag, 0, 1);
  assert.throws(() => (exports.count as (n: number) => number)(10), WebAssembly.RuntimeError);
});

Deno.test("a spinning guest is stopped by another thread setting the flag", async () => {
  const { exports, flag } = await load(spin);
  const worker = new Worker(
    URL.createObjectURL(
      new Blob([`self.onmessage = (e) => setTimeout(() => Atomics.store(new Int32Array(e.data), 0, 1), 50);`], {
        type: "text/javascript",
      }),
    ),
    { type: "module" },
  );
  const started = performance.now();
  worker.postMessage(flag.buffer);
  assert.throws(() => (exports.spin as () => void)(), WebAssembly.RuntimeError);
  const took = performance.now() - started;
  worker.terminate();
  assert.ok(took >= 40 && took < 2000, `stopped after ${took} ms`);
});

Deno.test("modules without memory, with several memories, SIMD and exceptions", async () => {
  const none = wat(`(module (func (export "f") (result i32) (i32.const 7)))`);
  assert.equal(((await load(none)).exports.f as () => number)(), 7);
  const multi = wat(`(module (memory 1) (memory (export "m2") 1)
    (func (export "f") (result i32) (i32.store (memory 1) (i32.const 0) (i32.const 5)) (i32.load (memory 1) (i32.const 0))))`);
  assert.equal(((await load(multi)).exports.f as () => number)(), 5);
  const simd = wat(`(module (memory 1) (func (export "f") (result i32)
    (i32x4.extract_lane 1 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.load (i32.const 0))))))`);
  assert.equal(((await load(simd)).exports.f as () => number)(), 2);
});
