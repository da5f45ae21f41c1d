/**
 * From the typed config (service.toml, cluster.toml) to what the scheduler
 * sees. A node's capacity, runtimes and image cache are facts its agent
 * reports; cluster.toml adds its name, labels and declared GPUs.
 */

import type { NodeGpu, NodeSpec, RuntimeKind, ServiceSpec } from "../config/mod.ts";
import type { Amounts, GpuGroup, NodeView, WorkloadView } from "./types.ts";

export function workloadFromService(spec: ServiceSpec): WorkloadView {
  const r = spec.resources;
  return {
    id: `${spec.project}/${spec.name}`,
    project: spec.project,
    replicas: spec.replicas,
    runtimes: [spec.runtime],
    memory: r.memory ?? 0,
    cpuMillis: Math.round((r.cpu ?? 0) * 1000),
    ...(r.gpu && {
      gpu: {
        vendor: r.gpu.vendor,
        count: r.gpu.count,
        ...(r.gpu.vram_min !== undefined && { vramMin: r.gpu.vram_min }),
      },
    }),
    placement: {
      ...(spec.placement.node !== undefined && { node: spec.placement.node }),
      labels: { ...spec.placement.labels },
    },
    ...(spec.runtime === "container" && spec.image !== undefined && { image: spec.image }),
  };
}

/** What a node's agent reports about it. */
export interface NodeFacts {
  id: string;
  capacity: Amounts;
  runtimes: readonly RuntimeKind[];
  images?: readonly string[];
  /** Default true. */
  healthy?: boolean;
  /** Default false. */
  draining?: boolean;
  reserved?: NodeView["reserved"];
  /** GPUs the agent discovered; when given they replace those cluster.toml declares. */
  gpus?: readonly NodeGpu[];
}

/**
 * A node as the scheduler sees it. Its name is the `name` in cluster.toml, or
 * its address when it has none, so `placement.node` can name either.
 */
export function nodeFromSpec(spec: NodeSpec | undefined, facts: NodeFacts): NodeView {
  const name = spec?.name ?? spec?.address;
  const labels = { ...spec?.labels };
  return {
    id: facts.id,
    ...(name !== undefined && { name }),
    ...(labels.zone !== undefined && { zone: labels.zone }),
    labels,
    capacity: { ...facts.capacity },
    ...(facts.reserved && { reserved: facts.reserved }),
    gpus: (facts.gpus ?? spec?.gpus ?? []).map(gpuGroup),
    runtimes: [...facts.runtimes],
    images: [...(facts.images ?? [])],
    healthy: facts.healthy ?? true,
    draining: facts.draining ?? false,
  };
}

function gpuGroup(g: NodeGpu): GpuGroup {
  return {
    vendor: g.vendor,
    count: g.count,
    ...(g.model !== undefined && { model: g.model }),
    ...(g.vram !== undefined && { vramMb: g.vram }),
  };
}
