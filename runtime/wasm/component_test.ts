/** Recycled memories, on both ways a guest runs: the direct preview1 host, and a component (here via the adapter). */

import assert from "node:assert/strict";
import { sha256Hex } from "../../config/mod.ts";
import { prepareComponent } from "./compile.ts";
import { loadComponent } from "./component.ts";
import { runCommand } from "./guest.ts";
import { guests } from "./test_util.ts";

for (const direct of [true, false]) {
  Deno.test(`memories are recycled zeroed (${direct ? "preview1 host" : "component"}): no request sees the last one's`, async () => {
    const bytes = await Deno.readFile(guests.leak);
    const cache = await Deno.makeTempDir({ prefix: "orca-component-test-" });
    try {
      const compiled = await loadComponent(await prepareComponent(bytes, await sha256Hex(bytes), cache), { direct });
      assert.equal(compiled.direct, direct);
      const seen: WebAssembly.Memory[] = [];
      for (let i = 0; i < 4; i++) {
        const out: Uint8Array[] = [];
        const io = { env: {}, stdin: new Uint8Array(), stdout: (b: Uint8Array) => out.push(b), stderr() {} };
        let main: WebAssembly.Memory | undefined;
        const exports = await compiled.instantiate({ args: ["leak"], allowedHosts: [], io: () => io }, (instance) => {
          const memory = instance.exports.memory;
          if (memory instanceof WebAssembly.Memory && memory.buffer.byteLength > 65536) main ??= memory;
        });
        assert.ok(main);
        seen.push(main);
        assert.equal(await runCommand({ exports } as never), 0);
        assert.match(new TextDecoder().decode(out.at(-1)), /clean\n$/, `call ${i}`);
        // A call that is over cannot be made again on the same instance (its memory went back).
        await assert.rejects(() => runCommand({ exports } as never), /called twice/);
      }
      assert.equal(new Set(seen).size, 1, "every call ran in the one recycled memory");
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  });
}
