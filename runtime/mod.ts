/**
 * Runtimes: the `Runtime` interface every workload implements, and the Wasm
 * implementation (jco-transpiled components in a per-instance WASI sandbox).
 *
 * @module
 */

export * from "./types.ts";
export { LineSplitter, LogBuffer } from "./logs.ts";
export { WasmRuntime, type WasmRuntimeOptions } from "./wasm/runtime.ts";
export { compileComponent, type GuestKind, wasmKind } from "./wasm/compile.ts";
export { hostAllowed } from "./wasm/wasi.ts";
