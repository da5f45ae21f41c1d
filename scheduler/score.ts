/**
 * Ranking a feasible node for one replica. Higher is better; the parts are
 * recorded so `orca deploy --plan` can show them.
 *
 *   binpack  = 10 * (0.5 * memory used after / capacity + 0.5 * cpu used after / capacity)
 *              best fit: the fuller the node ends up, the better (fewer nodes used)
 *   image    = +2 when a container's image is already on the node
 *   locality = +1 when the node already runs a replica of the same project
 *   runtime  = +3 when the replica would run as Wasm (a workload that can do both prefers Wasm)
 *   gpu      = -5 when a workload that needs no GPU would take room on a GPU node (keep them for GPU work)
 *   spread   = -20 per replica of the workload its zone has beyond the emptiest feasible zone,
 *              -10 per replica of the workload already on the node (zones first, then nodes)
 */

import type { RuntimeKind } from "../config/mod.ts";
import type { ClusterState, NodeState } from "./state.ts";
import type { ScoreParts, WorkloadView } from "./types.ts";

/** The node's total score; its parts go into `parts` when given (no allocation otherwise). */
export function score(
  state: ClusterState,
  n: NodeState,
  w: WorkloadView,
  runtime: RuntimeKind,
  /** Replicas of the workload in the node's zone, beyond the emptiest feasible zone. */
  zoneExcess: number,
  parts?: ScoreParts,
): number {
  const cap = n.node.capacity;
  const memAfter = cap.memory - n.freeMemory + state.memoryOf(w, runtime);
  const cpuAfter = cap.cpuMillis - n.freeCpu + w.cpuMillis;
  const binpack = 10 *
    (0.5 * (cap.memory > 0 ? memAfter / cap.memory : 1) + 0.5 * (cap.cpuMillis > 0 ? cpuAfter / cap.cpuMillis : 1));
  const image = runtime === "container" && w.image !== undefined && n.images.has(w.image) ? 2 : 0;
  const locality = n.projects.has(w.project) ? 1 : 0;
  const runtimeBonus = (runtime === "wasm" ? 3 : 0) - (!w.gpu && n.node.gpus.length > 0 ? 5 : 0);
  const spread = -20 * zoneExcess - 10 * (n.replicas.get(w.id) ?? 0);
  const total = binpack + image + locality + runtimeBonus + spread;
  if (parts) Object.assign(parts, { binpack, image, locality, runtime: runtimeBonus, spread, total });
  return total;
}
