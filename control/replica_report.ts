/**
 * A node's report of its workloads (`POST /api/v1/cluster/nodes/{id}/replicas`): which services it runs ready, at
 * which version, which failed to start there, and which it runs no more. The leader commits it to the log; the
 * proxies route to ready replicas first, `orca status` shows it, and a drain waits for it.
 */

import { OrcaError } from "../errors.ts";
import type { ReplicaReport } from "./placement_store.ts";

/** The most services one report names (states and gone together). */
const MAX_ENTRIES = 10_000;
const SERVICE_KEY = /^[a-z0-9][a-z0-9-]{0,62}\/[a-z0-9][a-z0-9-]{0,62}$/;

/** Checks a report's body; an error names the field at fault. */
export function checkReport(value: unknown): { states: ReplicaReport[]; gone: string[] } {
  const bad = (field: string, why: string) => new OrcaError("invalid", `${field} ${why}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("report", "must be an object");
  const { states, gone } = value as Record<string, unknown>;
  if (!Array.isArray(states)) throw bad("states", "must be a list");
  if (!Array.isArray(gone)) throw bad("gone", "must be a list");
  if (states.length + gone.length > MAX_ENTRIES) throw bad("report", `may name at most ${MAX_ENTRIES} services`);
  const checked = states.map((s, i): ReplicaReport => {
    const { service, version, state, message } = (typeof s === "object" && s !== null ? s : {}) as Record<
      string,
      unknown
    >;
    if (typeof service !== "string" || !SERVICE_KEY.test(service)) {
      throw bad(`states[${i}].service`, "must be project/name");
    }
    if (!Number.isSafeInteger(version) || (version as number) < 1) {
      throw bad(`states[${i}].version`, "must be a whole number from 1");
    }
    if (state !== "ready" && state !== "failed") throw bad(`states[${i}].state`, 'must be "ready" or "failed"');
    if (message !== undefined && (typeof message !== "string" || message.length > 1000)) {
      throw bad(`states[${i}].message`, "must be a string of at most 1000 characters");
    }
    return { service, version: version as number, state, ...(message !== undefined && { message }) };
  });
  gone.forEach((g, i) => {
    if (typeof g !== "string" || !SERVICE_KEY.test(g)) throw bad(`gone[${i}]`, "must be project/name");
  });
  return { states: checked, gone: gone as string[] };
}
