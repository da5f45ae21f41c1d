/**
 * Spread: replicas of one workload go to the zone (failure domain) with the
 * fewest of them, then to the node with the fewest of them; the score only
 * ranks nodes that tie on both. Spread is an order, not a weight, so no
 * bin-packing gain can put two replicas in one zone while another has none.
 * Scaling down takes replicas from the most crowded zone and node first, so
 * what stays is still spread.
 */

import type { ClusterState, NodeState } from "./state.ts";
import type { Placement } from "./types.ts";

/** Replicas of `workload` in the zone of `n`. */
export function zoneReplicas(zones: ReadonlyMap<string, number> | undefined, n: NodeState): number {
  return zones?.get(n.zone) ?? 0;
}

/** Replicas of `workload` on `n`. */
export function nodeReplicas(n: NodeState, workload: string): number {
  return n.replicas.get(workload) ?? 0;
}

/**
 * Negative when a node with `a` replicas in its zone and `an` on it spreads
 * better than one with `b` and `bn`.
 */
export function compareSpread(a: number, an: number, b: number, bn: number): number {
  return a - b || an - bn;
}

/**
 * Which of a workload's running replicas to stop first: the one in the most
 * crowded zone, then on the most crowded node, then the highest replica index.
 */
export function surplusIndex(state: ClusterState, workload: string, running: readonly Placement[]): number {
  const zones = state.zoneCounts(workload);
  let best = -1;
  let bestZone = -1, bestNode = -1;
  for (let i = 0; i < running.length; i++) {
    const n = state.byId.get(running[i].node);
    const z = n ? zoneReplicas(zones, n) : 0;
    const k = n ? nodeReplicas(n, workload) : 0;
    const better = best < 0 || compareSpread(z, k, bestZone, bestNode) > 0 ||
      (z === bestZone && k === bestNode && running[i].replica > running[best].replica);
    if (better) [best, bestZone, bestNode] = [i, z, k];
  }
  return best;
}
