/**
 * Configuration: cluster.toml and services/<project>/service.toml, parsed
 * into a typed, validated model with errors that name file, line and field.
 *
 * @module
 */

export * from "./types.ts";
export { parseServiceFile, parseToml, readService } from "./service.ts";
export { defaultCluster, parseClusterFile } from "./cluster.ts";
export { loadProject, type ModuleFile, type ProjectBundle, sha256Hex } from "./project.ts";
export { parseRoute, parseTrigger, type RouteSegment, type TriggerSpec } from "./triggers.ts";
export { type CronSchedule, parseCron } from "./cron.ts";
export { formatMemory, parseMemory } from "./units.ts";
export { closest, didYouMean } from "./suggest.ts";
