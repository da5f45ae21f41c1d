/**
 * One container of a workload, as the runtime and its watchdog handle it:
 * started and found (its published port and its address on the project
 * network), looked at, probed over HTTP, and read back (its last lines).
 */

import type { ServiceSpec } from "../../config/mod.ts";
import type { ProbeFailure, ReplicaHealth } from "../types.ts";
import { demux, type Engine, engineStatus } from "./engine.ts";
import { projectNetwork } from "./spec.ts";
import { mergeLogs } from "./util.ts";

export interface Replica {
  /** Its number, from 1 (`<project>-<name>-<n>`). */
  n: number;
  id: string;
  name: string;
  /** Published loopback port, where the proxy sends requests. */
  hostPort?: number;
  /** Address on the project network. */
  ip?: string;
  /** Whether it gets requests: not while found dead, failing readiness, or restarting. */
  routed: boolean;
}

export interface Inspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; StartedAt: string; ExitCode: number; OOMKilled: boolean };
  Config: { Labels: Record<string, string> };
  NetworkSettings: {
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks: Record<string, { IPAddress: string; Aliases: string[] | null }>;
  };
  HostConfig: Record<string, unknown>;
}

export function inspect(engine: Engine, id: string): Promise<Inspect> {
  return engine.request<Inspect>("GET", `/containers/${encodeURIComponent(id)}/json`);
}

/** Starts `r`'s container (a running one is left as it is) and reads its port and address, which a start may change. */
export async function startReplica(engine: Engine, r: Replica, spec: ServiceSpec): Promise<void> {
  await engine.request("POST", `/containers/${r.id}/start`);
  const info = await inspect(engine, r.id);
  const binding = spec.port ? info.NetworkSettings.Ports[`${spec.port}/tcp`]?.[0] : undefined;
  r.hostPort = binding ? Number(binding.HostPort) : undefined;
  r.ip = info.NetworkSettings.Networks[projectNetwork(spec.project)]?.IPAddress || undefined;
}

/** Whether `r` runs, and if not, how it ended. */
export async function replicaHealth(engine: Engine, r: Replica): Promise<ReplicaHealth> {
  let info: Inspect;
  try {
    info = await inspect(engine, r.id);
  } catch (err) {
    if (engineStatus(err) === 404) return { replica: r.n, alive: false, detail: "the container is gone" };
    throw err;
  }
  const s = info.State;
  if (s.Running) return { replica: r.n, alive: true };
  const oom = s.OOMKilled ? ", out of memory: raise resources.memory" : "";
  return {
    replica: r.n,
    alive: false,
    exitCode: s.ExitCode,
    ...(s.OOMKilled && { oomKilled: true }),
    detail: `${s.Status} (exit code ${s.ExitCode}${oom})`,
  };
}

/**
 * GET `path` on `r`'s own address on the project network (the engine's port proxy would accept before the app
 * listens); a replica without an address fails.
 */
export async function probeReplica(
  r: Replica,
  spec: ServiceSpec,
  path: string,
  timeoutMs: number,
): Promise<ProbeFailure> {
  if (!spec.port || !r.ip) return "it has no address to probe (no port, or not on its network)";
  try {
    const res = await fetch(`http://${r.ip}:${spec.port}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "manual",
    });
    await res.body?.cancel();
    return res.status < 400 ? undefined : `GET ${path} answered ${res.status}`;
  } catch (err) {
    const e = err as Error;
    return e.name === "TimeoutError" ? `GET ${path} gave no answer in ${timeoutMs} ms` : `GET ${path}: ${e.message}`;
  }
}

/** The last `lines` lines `r` wrote (none when its container is gone). */
export async function tailReplica(engine: Engine, r: Replica, lines: number): Promise<string[]> {
  try {
    const stream = await engine.stream("GET", `/containers/${r.id}/logs`, {
      query: { stdout: 1, stderr: 1, timestamps: 1, tail: lines },
    });
    const out: string[] = [];
    for await (const line of mergeLogs([demux(stream as AsyncIterable<Uint8Array>)])) out.push(line.text);
    return out.slice(-lines);
  } catch (err) {
    if (engineStatus(err) === 404) return [];
    throw err;
  }
}
