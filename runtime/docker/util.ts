/** Helpers of the container runtime: engine stats, image names, log streams, job messages. */

import { parseTrigger, type ServiceSpec } from "../../config/mod.ts";
import { OrcaError } from "../../errors.ts";
import { toBase64 } from "../bytes.ts";
import { engineMessage } from "./engine.ts";
import type { LogLine } from "../types.ts";

export interface DockerStats {
  memory_stats?: { usage?: number; limit?: number };
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
}

export function cpuPercentOf(s: DockerStats): number {
  const cpu = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const system = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  return system > 0 && cpu > 0 ? (cpu / system) * (s.cpu_stats?.online_cpus ?? 1) * 100 : 0;
}

/** Whether a service only runs jobs: triggers but no http route and no domain. */
export function jobOnly(s: ServiceSpec): boolean {
  if (s.domain || s.triggers.length === 0) return false;
  return s.triggers.every((t) => {
    const p = parseTrigger(t);
    return !("error" in p) && p.type !== "http";
  });
}

export function messageEnv(bytes: Uint8Array): Record<string, string> {
  if (bytes.length === 0) return {};
  try {
    return { ORCA_MESSAGE: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { ORCA_MESSAGE_BASE64: toBase64(bytes) };
  }
}

export function splitImage(image: string): [string, string] {
  const at = image.lastIndexOf(":");
  return at > image.lastIndexOf("/") ? [image.slice(0, at), image.slice(at + 1)] : [image, "latest"];
}

/** Lines from several replicas' log streams, each as it comes. */
export async function* mergeLogs(
  streams: AsyncGenerator<{ stream: "stdout" | "stderr"; data: Uint8Array }>[],
): AsyncGenerator<LogLine> {
  const decoder = new TextDecoder();
  const pending = new Map<
    number,
    Promise<{ i: number; r: IteratorResult<{ stream: "stdout" | "stderr"; data: Uint8Array }> }>
  >();
  streams.forEach((s, i) => pending.set(i, s.next().then((r) => ({ i, r }))));
  while (pending.size > 0) {
    const { i, r } = await Promise.race(pending.values());
    if (r.done) {
      pending.delete(i);
      continue;
    }
    pending.set(i, streams[i].next().then((r) => ({ i, r })));
    for (const raw of decoder.decode(r.value.data).split("\n")) {
      if (!raw) continue;
      const space = raw.indexOf(" ");
      const at = Date.parse(raw.slice(0, space));
      yield {
        at: Number.isNaN(at) ? Date.now() : at,
        stream: r.value.stream,
        text: Number.isNaN(at) ? raw : raw.slice(space + 1),
      };
    }
  }
}

/** An engine error as the user should read it: a missing command or a taken port said plainly. */
export function explainEngineError(err: unknown, what: string): Error {
  if (err instanceof OrcaError) return err;
  const message = engineMessage(err);
  if (/No command specified/i.test(message)) {
    return new OrcaError("config", `${what}: the image has no command to run`, {
      hint: 'set `command = ["/path/to/program", "arg"]` in service.toml',
      cause: err,
    });
  }
  if (/port is already allocated|address already in use/i.test(message)) {
    return new OrcaError("conflict", `${what}: a port it needs is already in use on this host`, {
      hint: message,
      cause: err,
    });
  }
  return new OrcaError("internal", `${what}: the Docker engine refused: ${message}`, { cause: err });
}
