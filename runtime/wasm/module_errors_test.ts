/**
 * Modules Orca cannot run are refused at deploy with a message that says
 * why and what it accepts, not with an error from deep inside jco or V8.
 * The modules are written here in WAT (wabt) and made into components with
 * jco's wasm-tools, as scripts/build_examples.ts does.
 */

import assert from "node:assert/strict";
import { componentEmbed, componentNew } from "@bytecodealliance/jco-transpile/wasm-tools";
import { OrcaError } from "../../errors.ts";
import { setup, wat } from "./test_util.ts";

/** Deploys `bytes`; returns the error it was refused with. */
async function refusal(bytes: Uint8Array): Promise<OrcaError> {
  const { deploy, cleanup } = await setup({ workers: 0 });
  try {
    await deploy(bytes);
  } catch (err) {
    assert.ok(err instanceof OrcaError, String(err));
    return err;
  } finally {
    await cleanup();
  }
  throw new Error("the module was deployed");
}

Deno.test("a component importing an interface nobody provides is refused at deploy, naming it and what guests get", async () => {
  const core = wat(`(module (import "evil:thing/iface" "f" (func)))`);
  const witSource = "package evil:thing;\ninterface iface { f: func(); }\nworld evil { import iface; }\n";
  const embedded = await componentEmbed(
    { binary: core, witSource, world: "evil" } as Parameters<typeof componentEmbed>[0],
  );
  const err = await refusal(await componentNew(embedded));
  assert.equal(err.code, "wasm");
  assert.match(err.message, /the component imports evil:thing\/iface, which Orca does not provide to guests/);
  assert.match(
    err.hint ?? "",
    /guests may import .*wasi:cli\/\{environment, exit, stdin.*wasi:http\/\{types, outgoing-handler\}/,
  );
  assert.match(err.hint ?? "", /\(WASI 0\.2\.0 to 0\.2\.\d+\)/);
});

Deno.test("a core module without _start is refused at deploy: it is not a WASI command, and what is accepted", async () => {
  const err = await refusal(wat(`(module (memory (export "memory") 1) (func (export "main")))`));
  assert.equal(err.code, "wasm");
  assert.match(err.message, /the core module exports no `_start` function, so it is not a WASI command/);
  assert.doesNotMatch(err.message, /failed to encode/);
  assert.match(err.hint ?? "", /WASI preview1 command \(a core module exporting `_start`/);
  assert.match(err.hint ?? "", /wasi:http\/incoming-handler .*wasi:cli\/run .*orca:jobs\/handler/);
});

Deno.test("a core module importing anything but WASI preview1 functions is refused at deploy, naming the import", async () => {
  const err = await refusal(wat(`(module (import "env" "evil" (func)) (func (export "_start")))`));
  assert.equal(err.code, "wasm");
  assert.match(
    err.message,
    /the core module imports env\.evil \(function\): a core module may import only WASI preview1/,
  );
});
