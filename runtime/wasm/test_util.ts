/** Shared by the Wasm runtime tests: the guests, and a runtime with a deploy helper. */

import initWabt from "wabt";
import { readService, sha256Hex } from "../../config/mod.ts";
import { WasmRuntime, type WasmRuntimeOptions } from "./runtime.ts";

const root = new URL("../../", import.meta.url).pathname;
export const guests: Record<string, string> = {
  js: `${root}examples/services/hello-js/hello.wasm`,
  c: `${root}examples/services/hello-c/hello.wasm`,
  trap: `${root}tests/fixtures/guests/trap.wasm`,
  spin: `${root}tests/fixtures/guests/spin.wasm`,
  version1: `${root}tests/fixtures/guests/version1.wasm`,
  stream: `${root}tests/fixtures/guests/stream.wasm`,
  echo: `${root}tests/fixtures/guests/echo.wasm`,
  jsstream: `${root}tests/fixtures/guests/jsstream.wasm`,
  leak: `${root}tests/fixtures/guests/leak.wasm`,
  sleep: `${root}tests/fixtures/guests/sleep.wasm`,
  sandbox: `${root}tests/fixtures/guests/sandbox.wasm`,
  reuse: `${root}tests/fixtures/guests/reuse.wasm`,
  remember: `${root}tests/fixtures/guests/remember.wasm`,
  statics: `${root}tests/fixtures/guests/statics.wasm`,
  wat: `${root}tests/fixtures/guests/hello.http.wasm`,
};

export async function setup(opts: Partial<WasmRuntimeOptions> = {}) {
  const modules = new Map<string, Uint8Array>();
  const cacheDir = await Deno.makeTempDir({ prefix: "orca-wasm-test-" });
  const runtime = new WasmRuntime({
    cacheDir,
    poolSize: 2,
    ...opts,
    loadModule: (hash) => Promise.resolve(modules.get(hash)!),
  });
  let n = 0;
  const deploy = async (bytes: Uint8Array, extra: Record<string, unknown> = {}) => {
    const hash = await sha256Hex(bytes);
    modules.set(hash, bytes);
    const service = readService(
      { name: `svc${++n}`, module: "x.wasm", module_hash: hash, ...extra },
      { file: "test" },
      "p",
      [],
      {
        api: true,
      },
    );
    const handle = await runtime.create({ id: `p/svc${n}@1`, service });
    await runtime.start(handle);
    return handle;
  };
  return {
    runtime,
    deploy,
    cleanup: () => {
      runtime.close();
      return Deno.remove(cacheDir, { recursive: true });
    },
  };
}

const wabt = await initWabt();

/** A core module from WebAssembly text (wabt), with the proposals the tests use. */
export function wat(text: string): Uint8Array {
  // multi_memory is a wabt feature its typings do not list yet.
  const features = { simd: true, threads: true, exceptions: true, multi_memory: true } as Parameters<
    typeof wabt.parseWat
  >[2];
  const m = wabt.parseWat("t.wat", text, features);
  try {
    return m.toBinary({}).buffer as Uint8Array;
  } finally {
    m.destroy();
  }
}
