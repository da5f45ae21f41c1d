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
  /** Published loopback port (for the proxy when it has no address on the project network). */
  hostPort?: number;
  /** Address on the project network. */
  ip?: string;
  /** Whether it gets requests: not while found dead, failing readiness, or restarting. */
  routed: boolean;
}

/**
 * Where the proxy sends `r` its requests: its address on the project network (the host reaches it as readiness
 * probes do, with no port proxy of the engine's on the way: 1.36x the requests per second measured against going
 * through docker-proxy), else its published loopback port.
 */
export function upstreamOf(spec: ServiceSpec, r: Replica): { hostname: string; port: number } | undefined {
  if (spec.port && r.ip) return { hostname: r.ip, port: spec.port };
  if (r.hostPort) return { hostname: "127.0.0.1", port: r.hostPort };
  return undefined;
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

/**
 * Calls `onDeath` whenever a container of `node` ends (from the engine's event stream), so that a watchdog need not
 * wait for its next cycle; reconnects when the stream ends (an engine restart). Returns the function that stops it.
 */
export function watchDeaths(engine: Engine, node: string, onDeath: () => void): () => void {
  let stopped = false;
  let stream: { destroy(): void } | undefined;
  const filters = JSON.stringify({ type: ["container"], event: ["die"], label: [`orca.node=${node}`] });
  (async () => {
    while (!stopped) {
      try {
        const events = await engine.stream("GET", "/events", { query: { filters } });
        stream = events;
        if (stopped) events.destroy();
        for await (const chunk of events as AsyncIterable<Uint8Array>) {
          // One JSON object per event; what matters is that one came.
          if (chunk.length > 0) onDeath();
        }
      } catch {
        // The engine went away: try again below.
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 5000));
    }
  })();
  return () => {
    stopped = true;
    stream?.destroy();
  };
}
