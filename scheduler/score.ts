/**
 * Ranking a feasible node for one replica. Higher is better; spread decides
 * before the score does (spread.ts), and the lower node id after it. With
 * fm, fc the shares of the node's memory and CPU free (reserved counts as
 * used) before the replica lands, and fm', fc' after:
 *
 *   fit      = 10 * (2 - fm' - fc') / 2
 *              best fit: the fuller the node ends up, the fewer nodes the cluster uses
 *   waste    = WASTE_WEIGHT * (stranded(fm, fc) - stranded(fm', fc')),
 *              stranded(fm, fc) = |fm - fc| * max(0, 1 - min(fm, fc) / STRAND_MARGIN)
 *              what is left of one resource once the other is (nearly) used up: best fit
 *              alone fills a GPU node's memory with memory-heavy work and strands its CPU
 *   image    = +2 when a container's image is already on the node
 *   locality = +1 when the node already runs a replica of the same project
 *   runtime  = +3 when the replica would run as Wasm (a workload that can do both prefers Wasm)
 *   gpu      = -5 when a workload that needs no GPU would be the first on a node with GPUs
 *              (idle GPU nodes are kept for GPU work; busy ones may be filled)
 *   total    = fit + waste + image + locality + runtime + gpu
 */

import type { Candidate, Need } from "./filter.ts";
import type { NodeState } from "./state.ts";
import type { ScoreParts } from "./types.ts";

export const WASTE_WEIGHT = 100;
export const STRAND_MARGIN = 0.05;

/** The node's score; its parts go into `parts` when given (nothing is allocated otherwise). */
export function score(n: NodeState, need: Need, c: Candidate, parts?: ScoreParts): number {
  const cap = n.node.capacity;
  const w = need.w;
  const freeMem = share(n.freeMemory, cap.memory);
  const freeCpu = share(n.freeCpu, cap.cpuMillis);
  const freeMemAfter = share(n.freeMemory - c.memory, cap.memory);
  const freeCpuAfter = share(n.freeCpu - w.cpuMillis, cap.cpuMillis);
  const fit = 10 * (2 - freeMemAfter - freeCpuAfter) / 2;
  const waste = WASTE_WEIGHT * (stranded(freeMem, freeCpu) - stranded(freeMemAfter, freeCpuAfter));
  const image = c.runtime === "container" && w.image !== undefined && n.images.has(w.image) ? 2 : 0;
  const locality = n.projects.has(w.project) ? 1 : 0;
  const runtime = c.runtime === "wasm" ? 3 : 0;
  const gpu = w.gpu === undefined && n.node.gpus.length > 0 && n.placed === 0 ? -5 : 0;
  const total = fit + waste + image + locality + runtime + gpu;
  if (parts) {
    parts.fit = fit;
    parts.waste = waste;
    parts.image = image;
    parts.locality = locality;
    parts.runtime = runtime;
    parts.gpu = gpu;
    parts.total = total;
  }
  return total;
}

/** Capacity of one resource left over while the other is (nearly) used up, as a share of the node. */
export function stranded(freeMem: number, freeCpu: number): number {
  const low = freeMem < freeCpu ? freeMem : freeCpu;
  if (low >= STRAND_MARGIN) return 0;
  return Math.abs(freeMem - freeCpu) * (1 - Math.max(0, low) / STRAND_MARGIN);
}

/** The free share of a resource; a resource a node has none of counts as used up. */
function share(free: number, capacity: number): number {
  return capacity > 0 ? free / capacity : 0;
}
