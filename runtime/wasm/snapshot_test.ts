/**
 * Snapshot reset's two halves: what exposeState rewrites (mutable globals and memories exported; a module that
 * changes tables or drops segments refused), and what Snapshot puts back (memories, globals, the glue's handle and
 * capture tables), with a module made from WAT and a glue state shaped like jco's.
 */

import assert from "node:assert/strict";
import { exposeState, GLOBAL_EXPORT, type GlueState, MEMORY_EXPORT, Snapshot } from "./snapshot.ts";
import { wat } from "./test_util.ts";

const stateful = wat(`(module
  (global $counter (mut i32) (i32.const 0))
  (global $wide (mut i64) (i64.const 7))
  (global $fixed i32 (i32.const 5))
  (memory 1 4)
  (data (i32.const 16) "pristine")
  (func (export "touch") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (global.set $wide (i64.const 99))
    (i32.store (i32.const 16) (i32.const 0x52434553))
    (global.get $counter))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))`);

function instantiate(bytes: Uint8Array) {
  const exposed = exposeState(bytes);
  assert.ok("module" in exposed, "why" in exposed ? exposed.why : "");
  const instance = new WebAssembly.Instance(new WebAssembly.Module(exposed.module as Uint8Array<ArrayBuffer>));
  return instance;
}

const T_FLAG = 1 << 30;

Deno.test("exposeState exports the mutable globals and the memory, and nothing else changes", () => {
  const instance = instantiate(stateful);
  const names = Object.keys(instance.exports).sort();
  assert.deepEqual(names, [`${GLOBAL_EXPORT}0`, `${GLOBAL_EXPORT}1`, `${MEMORY_EXPORT}0`, "grow", "touch"].sort());
  assert.equal((instance.exports.touch as () => number)(), 1);
});

Deno.test("a snapshot puts memories, globals and the glue's tables back as they were", () => {
  const instance = instantiate(stateful);
  const memory = instance.exports[`${MEMORY_EXPORT}0`] as WebAssembly.Memory;
  const handles = Object.assign([T_FLAG, 0, 0, 1 | T_FLAG], { _createdReps: new Set<unknown>([1]) });
  const captures = new Map<unknown, unknown>([[1, "made at instantiation"]]);
  const glue: GlueState = { handleTables: [handles], captureTables: [captures] };
  const snapshot = Snapshot.take([instance], [], glue)!;
  const text = () => new TextDecoder().decode(new Uint8Array(memory.buffer, 16, 8));
  for (let round = 0; round < 3; round++) {
    assert.equal((instance.exports.touch as () => number)(), 1, "the counter starts from its saved value");
    assert.equal(text(), "SECRtine");
    // The request left a resource open: a live handle in slot 2 and its host object.
    handles.push(0, 2 | T_FLAG);
    handles._createdReps.add(2);
    captures.set(2, "a request's secret");
    assert.ok(snapshot.restore());
    assert.equal(text(), "pristine");
    assert.equal((instance.exports[`${GLOBAL_EXPORT}1`] as WebAssembly.Global).value, 7n);
    assert.deepEqual([...handles], [T_FLAG, 0, 0, 1 | T_FLAG], "the handle the request left is gone");
    assert.deepEqual([...handles._createdReps], [1]);
    assert.deepEqual([...captures.keys()], [1], "its host object is let go");
  }
  assert.equal(snapshot.bytes, 65536);
});

Deno.test("a grown memory cannot be put back: restore says so and changes nothing", () => {
  const instance = instantiate(stateful);
  const snapshot = Snapshot.take([instance], [], { handleTables: [], captureTables: [] })!;
  (instance.exports.touch as () => number)();
  assert.equal((instance.exports.grow as () => number)(), 1);
  assert.equal(snapshot.restore(), false);
  assert.equal((instance.exports[`${GLOBAL_EXPORT}0`] as WebAssembly.Global).value, 1, "left as it was");
});

Deno.test("no snapshot without the glue's handle tables (a glue the patch did not recognise)", () => {
  assert.equal(Snapshot.take([instantiate(stateful)], [], { captureTables: [] }), undefined);
});

Deno.test("a module that changes a table or drops a segment is not reset, and says why", () => {
  const tableSet = wat(`(module (table 2 funcref) (func $f)
    (func (export "f") (table.set (i32.const 0) (ref.func $f))) (elem declare func $f))`);
  assert.deepEqual(exposeState(tableSet), { why: "its code sets table entries (table.set)" });
  const grow = wat(`(module (table 1 funcref) (func (export "f") (drop (table.grow (ref.null func) (i32.const 1)))))`);
  assert.deepEqual(exposeState(grow), { why: "its code changes tables" });
  const dataDrop = wat(`(module (memory 1) (data "x") (func (export "f") (data.drop 0)))`);
  assert.deepEqual(exposeState(dataDrop), { why: "its code drops data or element segments" });
  const v128 = wat(`(module (global (mut v128) (v128.const i32x4 0 0 0 0)))`);
  assert.ok("why" in exposeState(v128));
});

Deno.test("a shared memory (the interrupt flag) is not guest state and is not exported", () => {
  const shared = wat(`(module (memory 1) (memory 1 1 shared))`);
  const exposed = exposeState(shared);
  assert.ok("module" in exposed);
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(exposed.module as Uint8Array<ArrayBuffer>));
  assert.deepEqual(exports.map((e) => e.name), [`${MEMORY_EXPORT}0`]);
});
