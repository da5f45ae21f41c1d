/**
 * Input the planner cannot use becomes a `Problem`, never an exception: a
 * view or workload list may come from JSON, an API body or an old snapshot,
 * whatever the types say. A bad workload is skipped and its running replicas
 * are left alone; a bad node takes nothing new and its replicas stay; of two
 * nodes or workloads with one id, the first counts.
 */

import type { ClusterView, GpuGroup, NodeView, Problem, WorkloadView } from "./types.ts";

/** As many as service.toml allows. */
export const MAX_REPLICAS = 10_000;

export interface CheckedInput {
  nodes: NodeView[];
  /** Nodes that are not used, by id, with the reason; replicas on them stay as they are. */
  unusable: Map<string, string>;
  workloads: WorkloadView[];
  /** Workloads that are not planned; their replicas stay as they are. */
  skipped: Set<string>;
  problems: Problem[];
}

export function checkInput(view: ClusterView, workloads: readonly WorkloadView[]): CheckedInput {
  const out: CheckedInput = { nodes: [], unusable: new Map(), workloads: [], skipped: new Set(), problems: [] };
  const nodeIds = new Set<string>();
  for (const node of list<NodeView>(view?.nodes)) {
    const id = typeof node?.id === "string" && node.id !== "" ? node.id : undefined;
    if (id === undefined) {
      out.problems.push({ reason: "a node without an id is ignored" });
      continue;
    }
    if (nodeIds.has(id)) {
      out.problems.push({ node: id, reason: `node id ${id} appears twice; the first is used` });
      continue;
    }
    nodeIds.add(id);
    const reason = nodeProblem(node);
    if (reason) {
      out.unusable.set(id, reason);
      out.problems.push({ node: id, reason: `${id} is not used: ${reason}` });
    } else out.nodes.push(node);
  }
  const workloadIds = new Set<string>();
  for (const w of list<WorkloadView>(workloads)) {
    const id = typeof w?.id === "string" && w.id !== "" ? w.id : undefined;
    if (id === undefined) {
      out.problems.push({ reason: "a workload without an id is ignored" });
      continue;
    }
    if (workloadIds.has(id)) {
      out.problems.push({ workload: id, reason: `workload ${id} appears twice; the first is used` });
      continue;
    }
    workloadIds.add(id);
    const reason = workloadProblem(w);
    if (reason) {
      out.skipped.add(id);
      out.problems.push({ workload: id, reason: `${id} is not planned: ${reason}` });
    } else out.workloads.push(w);
  }
  return out;
}

function nodeProblem(n: NodeView): string | undefined {
  if (!isAmount(n.capacity?.memory) || !isAmount(n.capacity?.cpuMillis)) {
    return "capacity must give memory and cpuMillis as numbers >= 0";
  }
  const r = n.reserved;
  if (r !== undefined && (!isAmount(r?.memory) || !isAmount(r.cpuMillis) || !optionalList(r.gpus, isAmount))) {
    return "reserved must give memory, cpuMillis (and gpus per group) as numbers >= 0";
  }
  if (!optionalString(n.name) || !optionalString(n.zone)) return "name and zone must be strings";
  if (!isRecord(n.labels)) return "labels must be a table of strings";
  if (!optionalList(n.runtimes, isString) || !optionalList(n.images, isString) || !n.runtimes || !n.images) {
    return "runtimes and images must be lists of strings";
  }
  const group = (g: GpuGroup) => isCount(g?.count) && isString(g.vendor) && isAmount(g.vramMb ?? 0);
  if (!Array.isArray(n.gpus) || !n.gpus.every(group)) {
    return "each GPU group needs a vendor, a whole count and VRAM in MB";
  }
  if (typeof n.healthy !== "boolean" || typeof n.draining !== "boolean") {
    return "healthy and draining must be true or false";
  }
  return undefined;
}

function workloadProblem(w: WorkloadView): string | undefined {
  if (!isString(w.project)) return "project must be a string";
  if (!isCount(w.replicas) || w.replicas > MAX_REPLICAS) {
    return `replicas must be a whole number from 0 to ${MAX_REPLICAS}, not ${shown(w.replicas)}`;
  }
  if (!isAmount(w.memory)) return `memory must be a number of bytes >= 0, not ${shown(w.memory)}`;
  if (!isAmount(w.cpuMillis)) return `cpuMillis must be a number >= 0, not ${shown(w.cpuMillis)}`;
  if (!Array.isArray(w.runtimes) || w.runtimes.length === 0) return "runtimes must name wasm, container or both";
  for (const r of w.runtimes) if (r !== "wasm" && r !== "container") return `unknown runtime ${shown(r)}`;
  if (w.gpu !== undefined) {
    if (!isCount(w.gpu?.count) || w.gpu.count < 1) return "gpu.count must be a whole number >= 1";
    if (!isString(w.gpu.vendor)) return "gpu.vendor must be a string";
    if (w.gpu.vramMin !== undefined && !isAmount(w.gpu.vramMin)) return "gpu.vramMin must be a number >= 0";
  }
  if (!isRecord(w.placement?.labels)) return "placement.labels must be a table of strings";
  if (!optionalString(w.placement.node)) return "placement.node must be a string";
  if (!optionalString(w.image)) return "image must be a string";
  return undefined;
}

/** A value as a message can show it, whatever it is (`String` throws for some objects). */
export function shown(x: unknown): string {
  if (typeof x === "number" || typeof x === "boolean" || x === null || x === undefined) return String(x);
  if (typeof x === "string") return JSON.stringify(x);
  if (Array.isArray(x)) return "a list";
  const type = typeof x;
  return type === "object" ? "an object" : `a ${type}`;
}

function list<T>(x: unknown): T[] {
  return Array.isArray(x) ? x as T[] : [];
}

function isAmount(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x) && x >= 0;
}

function isCount(x: unknown): x is number {
  return isAmount(x) && Number.isInteger(x);
}

function isString(x: unknown): x is string {
  return typeof x === "string";
}

function optionalString(x: unknown): boolean {
  return x === undefined || isString(x);
}

function optionalList(x: unknown, each: (x: unknown) => boolean): boolean {
  return x === undefined || (Array.isArray(x) && x.every(each));
}

function isRecord(x: unknown): x is Record<string, string> {
  return typeof x === "object" && x !== null && !Array.isArray(x) &&
    Object.values(x).every((v) => typeof v === "string");
}
