/**
 * Choosing a node for one replica: filter every node, then rank the feasible
 * ones by spread, then score, then node id. The fast path records nothing and
 * builds no strings; with `explain` every node's verdict is kept.
 */

import { type Candidate, feasible, type Need, newCandidate, rejections } from "./filter.ts";
import { score } from "./score.ts";
import { compareSpread, nodeReplicas, zoneReplicas } from "./spread.ts";
import { type ClusterState, compareIds, type NodeState } from "./state.ts";
import type { Placement, ReplicaExplanation, ScoreParts } from "./types.ts";

export interface Choice {
  placement?: Placement;
  /** When nothing fits: `node: reason; reason` for every node. */
  reasons: string[];
  explanation?: ReplicaExplanation;
}

/** Scratch space reused across replicas, so the fast path allocates nothing per node. */
export interface Scratch {
  candidate: Candidate;
  classes: Set<string>;
}

export function newScratch(): Scratch {
  return { candidate: newCandidate(), classes: new Set() };
}

export function choose(
  state: ClusterState,
  need: Need,
  replica: number,
  action: ReplicaExplanation["action"],
  explain: boolean,
  scratch: Scratch = newScratch(),
): Choice {
  if (explain) return chooseExplained(state, need, replica, action);
  const { candidate, classes } = scratch;
  const w = need.w;
  const pin = w.placement.node;
  const nodes = pin === undefined ? state.nodes : state.byPin.get(pin) ?? [];
  const zones = state.zoneCounts(w.id);
  let best: NodeState | undefined;
  let bestZone = 0, bestNode = 0, bestScore = 0;
  let runtime: Candidate["runtime"] = "container";
  let gpuGroup = -1;
  classes.clear();
  for (const n of nodes) {
    if (n.pristine) {
      if (classes.has(n.classKey)) continue; // ranks exactly like an earlier pristine node of its class
      classes.add(n.classKey);
    }
    if (!feasible(state, n, need, candidate)) continue;
    const z = zoneReplicas(zones, n);
    const k = nodeReplicas(n, w.id);
    const spread = best ? compareSpread(z, k, bestZone, bestNode) : -1;
    if (spread > 0) continue;
    const s = score(n, need, candidate);
    if (spread < 0 || s > bestScore) {
      [best, bestZone, bestNode, bestScore] = [n, z, k, s];
      runtime = candidate.runtime;
      gpuGroup = candidate.gpuGroup;
    }
  }
  if (!best) return { reasons: whyNot(state, need) };
  return { placement: placementOn(best, need, replica, runtime, gpuGroup), reasons: [] };
}

function chooseExplained(
  state: ClusterState,
  need: Need,
  replica: number,
  action: ReplicaExplanation["action"],
): Choice {
  const w = need.w;
  const zones = state.zoneCounts(w.id);
  const rejected: ReplicaExplanation["rejected"] = [];
  const ranked: (ReplicaExplanation["scores"][number] & { gpuGroup: number })[] = [];
  for (const n of state.nodes) {
    const c = newCandidate();
    if (!feasible(state, n, need, c)) {
      rejected.push({ node: n.node.id, reasons: rejections(state, n, need) });
      continue;
    }
    const parts = { zoneReplicas: zoneReplicas(zones, n), nodeReplicas: nodeReplicas(n, w.id) } as ScoreParts;
    score(n, need, c, parts);
    ranked.push({ node: n.node.id, runtime: c.runtime, parts, gpuGroup: c.gpuGroup });
  }
  ranked.sort((a, b) =>
    compareSpread(a.parts.zoneReplicas, a.parts.nodeReplicas, b.parts.zoneReplicas, b.parts.nodeReplicas) ||
    b.parts.total - a.parts.total || compareIds(a.node, b.node)
  );
  const top = ranked[0];
  const placement = top && placementOn(state.byId.get(top.node)!, need, replica, top.runtime, top.gpuGroup);
  const scores = ranked.map(({ node, runtime, parts }) => ({ node, runtime, parts }));
  return {
    ...(placement && { placement }),
    reasons: placement ? [] : whyNot(state, need, rejected),
    explanation: { replica, action, ...(placement && { chosen: placement.node }), rejected, scores },
  };
}

function placementOn(
  n: NodeState,
  need: Need,
  replica: number,
  runtime: Candidate["runtime"],
  gpuGroup: number,
): Placement {
  const p: Placement = { workload: need.w.id, replica, node: n.node.id, runtime };
  if (need.w.gpu && gpuGroup >= 0) p.gpu = { group: gpuGroup, count: need.w.gpu.count };
  return p;
}

/** Every node's reasons, as `node: reason; reason` lines. */
function whyNot(state: ClusterState, need: Need, rejected?: ReplicaExplanation["rejected"]): string[] {
  if (state.nodes.length === 0) return ["the cluster has no usable nodes"];
  const lines = (rejected ?? state.nodes.map((n) => ({ node: n.node.id, reasons: rejections(state, n, need) })))
    .map((r) => `${r.node}: ${r.reasons.join("; ")}`);
  const pin = need.w.placement.node;
  if (pin !== undefined && !state.byPin.has(pin)) lines.unshift(`no node has the id or name ${pin} (placement.node)`);
  return lines;
}
