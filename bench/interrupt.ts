/** Cost of the interrupt checks on a CPU-bound guest: the same loop, instrumented and not. */

import initWabt from "wabt";
import { instrumentInterrupts } from "../runtime/wasm/instrument.ts";

const source = `(module
  (func (export "work") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $done (loop $again
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $again)))
    (local.get $acc)))`;

export async function benchInterrupt(iterations = 200_000_000): Promise<string> {
  const wabt = await initWabt();
  const m = wabt.parseWat("work.wat", source);
  const plain = m.toBinary({}).buffer as Uint8Array;
  m.destroy();
  const time = async (bytes: Uint8Array) => {
    const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>);
    const work = instance.exports.work as (n: number) => number;
    work(1_000_000); // warm up
    const t = performance.now();
    work(iterations);
    return performance.now() - t;
  };
  const base = Math.min(await time(plain), await time(plain));
  const checked = Math.min(await time(instrumentInterrupts(plain)!), await time(instrumentInterrupts(plain)!));
  return `interrupt checks: a tight loop of ${iterations / 1e6}M iterations took ${base.toFixed(0)} ms plain, ` +
    `${checked.toFixed(0)} ms instrumented (${
      ((checked / base - 1) * 100).toFixed(1)
    }% overhead, the worst case: a check per iteration)`;
}

if (import.meta.main) console.log(await benchInterrupt());
