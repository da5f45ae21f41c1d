/**
 * Runtimes: the `Runtime` interface every workload implements, the Wasm
 * implementation (jco-transpiled components in a per-instance WASI sandbox)
 * and the container implementation (a real Docker engine).
 *
 * @module
 */

export * from "./types.ts";
export { LineSplitter, LogBuffer } from "./logs.ts";
export { WasmRuntime, type WasmRuntimeOptions } from "./wasm/runtime.ts";
export { compileComponent, type GuestKind, wasmKind } from "./wasm/compile.ts";
export { hostAllowed } from "./wasm/wasi.ts";
export { ContainerRuntime } from "./docker/runtime.ts";
export { demux, Engine } from "./docker/engine.ts";
export { containerName, createContainerBody, type HostFacts, INTERNAL_NETWORK, projectNetwork } from "./docker/spec.ts";
export { discoverGpus, parseGroups, parseNvidiaSmi, parseRocmSmi, readHostFacts } from "./docker/gpu.ts";
export { concat, fromBase64, toBase64 } from "./bytes.ts";
export { endToEnd, forwardedPairs, headerPairs } from "./upstream.ts";
export { UpstreamError, UpstreamPool } from "./h1.ts";
