/**
 * The scheduler: a pure function from an immutable cluster view and the
 * workloads to a plan (placements, migrations, stops, what fits nowhere),
 * with every decision explained. Filter (health, drain, `placement.node`
 * exact, labels, runtime, memory, CPU, GPU) -> rank (spread across zones,
 * then nodes; then best-fit bin-packing, stranded capacity, image cache,
 * project locality, Wasm preference) -> plan. No I/O, no clock, no randomness.
 *
 * @module
 */

export * from "./types.ts";
export { plan } from "./plan.ts";
export { type ExplainJson, type ExplainOptions, explainPlan } from "./explain.ts";
export { type NodeFacts, nodeFromSpec, workloadFromService } from "./from_config.ts";
export { MAX_REPLICAS } from "./validate.ts";
