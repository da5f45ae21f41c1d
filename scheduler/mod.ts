/**
 * The scheduler: a pure function from an immutable cluster view and the
 * workloads to a plan (placements, migrations, stops), with every decision
 * explained. Filter -> rank (bin-pack, image cache, locality, Wasm
 * preference) -> spread across zones, then nodes.
 *
 * @module
 */

export * from "./types.ts";
export { plan } from "./plan.ts";
export { type ExplainJson, explainPlan } from "./explain.ts";
