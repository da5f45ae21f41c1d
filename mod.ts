/**
 * Orca for embedding: start a node, parse configuration, use the runtimes.
 *
 * @module
 */

export { describeError, type ErrorCode, OrcaError } from "./errors.ts";
export { VERSION } from "./version.ts";
export * from "./config/mod.ts";
export * from "./runtime/mod.ts";
export * from "./proxy/mod.ts";
export * from "./control/mod.ts";
export { main as runCli } from "./cli.ts";
