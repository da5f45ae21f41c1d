/**
 * What the container runtime asks the engine for: the create-container body
 * for one replica of a service (seed 002: networks, aliases, limits, GPUs).
 * Pure: the host facts it needs (group ids, GPU devices) are passed in.
 */

import type { ServiceSpec } from "../../config/mod.ts";

/** The shared network that `internal = true` services of every project join. */
export const INTERNAL_NETWORK = "orca-internal";

/** Each project's own network. */
export function projectNetwork(project: string): string {
  return `orca-${project}`;
}

/** Predictable names: `<project>-<name>-<n>`, n from 1. */
export function containerName(spec: Pick<ServiceSpec, "project" | "name">, replica: number): string {
  return `${spec.project}-${spec.name}-${replica}`;
}

/** Facts about this host that GPU passthrough needs. */
export interface HostFacts {
  /** gids of the `video` and `render` groups (AMD ROCm). */
  groups: { video?: number; render?: number };
  /** AMD GPUs by index: their /dev/dri card and render nodes. */
  amdDevices: { card: string; render: string }[];
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

export interface CreateContainer {
  Image: string;
  Cmd?: string[];
  Env: string[];
  Labels: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  HostConfig: {
    Memory?: number;
    NanoCpus?: number;
    RestartPolicy: { Name: string; MaximumRetryCount?: number };
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[]>;
    Binds?: string[];
    DeviceRequests?: { Driver: string; Count: number; Capabilities: string[][] }[];
    Devices?: DeviceMapping[];
    GroupAdd?: string[];
  };
  NetworkingConfig: { EndpointsConfig: Record<string, { Aliases: string[] }> };
}

/** The labels on everything Orca creates, so orphans can be found. */
export function labelsFor(spec: ServiceSpec, workload: string, node: string, replica?: number): Record<string, string> {
  return {
    "orca.managed": "true",
    "orca.node": node,
    "orca.project": spec.project,
    "orca.service": spec.name,
    "orca.workload": workload,
    ...(replica !== undefined && { "orca.replica": String(replica) }),
  };
}

export function createContainerBody(
  spec: ServiceSpec,
  workload: string,
  replica: number,
  host: HostFacts,
  node: string,
): CreateContainer {
  const port = spec.port ? `${spec.port}/tcp` : undefined;
  const body: CreateContainer = {
    Image: spec.image!,
    ...(spec.command && { Cmd: spec.command }),
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: labelsFor(spec, workload, node, replica),
    ...(port && { ExposedPorts: { [port]: {} } }),
    HostConfig: {
      // Orca's watchdog restarts a replica that ends (with its own backoff, counting restarts to tell a crash loop).
      RestartPolicy: { Name: "no" },
      ...(spec.resources.memory && { Memory: spec.resources.memory }),
      ...(spec.resources.cpu && { NanoCpus: Math.round(spec.resources.cpu * 1e9) }),
      // Published on loopback only, on a port the engine picks: the proxy is the way in.
      ...(port && { PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: "" }] } }),
      ...(spec.volumes.length > 0 && { Binds: spec.volumes.map((v) => bind(v, spec.project)) }),
    },
    NetworkingConfig: {
      EndpointsConfig: { [projectNetwork(spec.project)]: { Aliases: [spec.name, ...spec.aliases] } },
    },
  };
  const gpu = spec.resources.gpu;
  if (gpu?.vendor === "nvidia") {
    body.HostConfig.DeviceRequests = [{ Driver: "nvidia", Count: gpu.count, Capabilities: [["gpu"]] }];
  } else if (gpu?.vendor === "amd") {
    const devices: DeviceMapping[] = [{
      PathOnHost: "/dev/kfd",
      PathInContainer: "/dev/kfd",
      CgroupPermissions: "rwm",
    }];
    for (const d of host.amdDevices.slice(0, gpu.count)) {
      for (const path of [d.card, d.render]) {
        devices.push({ PathOnHost: path, PathInContainer: path, CgroupPermissions: "rwm" });
      }
    }
    body.HostConfig.Devices = devices;
    const groups = [host.groups.video, host.groups.render].filter((g): g is number => g !== undefined);
    if (groups.length > 0) body.HostConfig.GroupAdd = groups.map(String);
  }
  return body;
}

/** Named volumes are scoped to the project (`orca-<project>-<name>`); host paths pass through. */
function bind(volume: string, project: string): string {
  const [source, ...rest] = volume.split(":");
  if (source.startsWith("/")) return volume;
  return [`orca-${project}-${source}`, ...rest].join(":");
}
