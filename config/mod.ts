/**
 * Configuration: cluster.toml and services/<project>/service.toml, parsed
 * into a typed, validated model with errors that name file, line and field.
 *
 * @module
 */

export * from "./types.ts";
export { parseServiceFile, parseToml, readinessOf, readService } from "./service.ts";
export { defaultCluster, parseClusterFile } from "./cluster.ts";
export { loadProject, type ProjectBundle } from "./project.ts";
export { type ModuleFile, sha256Hex } from "./files.ts";
export { checkPair, MAX_PEM_BYTES } from "./tls.ts";
export {
  isSecretRef,
  refsIn,
  resolveService,
  SECRET_NAME,
  SECRET_NAME_HINT,
  type SecretRef,
  serviceRefs,
} from "./secrets.ts";
export {
  eventNameError,
  eventPatternError,
  isReservedEvent,
  MAX_ROUTE_LENGTH,
  MAX_TOPIC_LENGTH,
  parseRoute,
  parseTrigger,
  type RouteSegment,
  topicError,
  type TriggerSpec,
} from "./triggers.ts";
export { type CronSchedule, parseCron } from "./cron.ts";
export { formatMemory, MAX_WASM_MEMORY, parseDuration, parseMemory, WASM_PAGE } from "./units.ts";
export { closest, didYouMean } from "./suggest.ts";
export {
  BRANCH_PATTERN,
  DEFAULT_POLL_MS,
  DEFAULT_STATUS_PORT,
  FOLDER_PATTERN,
  MAX_POLL_MS,
  MIN_POLL_MS,
  REPO_HINT,
  REPO_PATTERN,
} from "./gitops.ts";
