/**
 * What a server tells the cluster's registry of itself, for the scheduler:
 * its labels (`orca server --labels zone=eu-1,role=gpu`), its capacity (CPU
 * cores and memory) and its GPUs. Each server registers them through the log
 * when they differ from what the registry holds (at its first start, and
 * after a change: new labels, more memory).
 */

import type { NodeGpu, RuntimeKind } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";

export interface NodeFacts {
  labels: Record<string, string>;
  /** Memory in bytes, CPU in thousandths of a core (as the scheduler counts them). */
  capacity: { memory: number; cpuMillis: number };
  gpus: NodeGpu[];
  /** The runtimes it offers: Wasm always, containers where a Docker engine answered (absent: Wasm only). */
  runtimes?: RuntimeKind[];
  /** Where its proxy listens (`host:port`): other servers forward requests for its replicas there. */
  proxy?: string;
  /** A worker node (`orca join`): it runs replicas and takes no part in Raft. */
  worker?: boolean;
  /** Its name, for `placement.node` (`orca join --name`; default: its address). */
  name?: string;
  /** A server that runs no replicas (`orca server --no-workloads`): the control plane only. */
  noWorkloads?: boolean;
}

const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;
const MAX_LABELS = 32;
const MAX_GPU_GROUPS = 16;
/** A host name, an IPv4 address or a bracketed IPv6 one, and a port. */
const PROXY_ADDRESS = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}$/;

/** Parses `--labels k=v,k2=v2`; an error names the flag and the label at fault. */
export function parseLabels(text: string, flag = "--labels"): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text.trim() === "") return labels;
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=");
    const [key, value] = at < 0 ? [pair, undefined] : [pair.slice(0, at), pair.slice(at + 1)];
    if (value === undefined) throw new OrcaError("usage", `${flag}: ${JSON.stringify(pair)} is not key=value`);
    const error = labelError(key.trim(), value.trim());
    if (error) throw new OrcaError("usage", `${flag}: ${error}`, { hint: "e.g. --labels zone=eu-1,role=gpu" });
    if (key.trim() in labels) throw new OrcaError("usage", `${flag}: label ${key.trim()} given twice`);
    labels[key.trim()] = value.trim();
  }
  if (Object.keys(labels).length > MAX_LABELS) {
    throw new OrcaError("usage", `${flag}: at most ${MAX_LABELS} labels`);
  }
  return labels;
}

function labelError(key: string, value: string): string | undefined {
  if (!LABEL_KEY.test(key)) {
    return `label key ${
      JSON.stringify(key.slice(0, 80))
    } must be 1-63 letters, digits, . _ / - (starting and ending with a letter or digit)`;
  }
  if (!LABEL_VALUE.test(value)) {
    return `label ${key}'s value ${JSON.stringify(value.slice(0, 80))} must be at most 63 letters, digits, . _ -`;
  }
  return undefined;
}

/** Checks facts sent to the API (`PUT /cluster/members/:id`); the error names the field. */
export function checkFacts(value: unknown): NodeFacts {
  const bad = (field: string, why: string) => new OrcaError("invalid", `${field} ${why}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("facts", "must be an object");
  const { labels, capacity, gpus, runtimes, proxy, worker, name, noWorkloads } = value as Record<string, unknown>;
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) throw bad("labels", "must be an object");
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw bad("labels", `may hold at most ${MAX_LABELS}`);
  for (const [k, v] of entries) {
    const error = typeof v === "string" ? labelError(k, v) : `label ${k} must be a string`;
    if (error) throw bad("labels", `: ${error}`);
  }
  const c = capacity as Record<string, unknown> | null;
  const count = (v: unknown, max: number) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
  if (typeof c !== "object" || c === null || !count(c.memory, 2 ** 53 - 1) || !count(c.cpuMillis, 10_000_000)) {
    throw bad("capacity", "must be {memory: bytes, cpuMillis: thousandths of a core}, whole numbers");
  }
  if (!Array.isArray(gpus) || gpus.length > MAX_GPU_GROUPS) {
    throw bad("gpus", `must be a list of at most ${MAX_GPU_GROUPS}`);
  }
  gpus.forEach((g, i) => {
    const gpu = g as Record<string, unknown>;
    const ok = typeof g === "object" && g !== null && (gpu.vendor === "nvidia" || gpu.vendor === "amd") &&
      count(gpu.count, 1024) &&
      (gpu.model === undefined || (typeof gpu.model === "string" && gpu.model.length <= 128)) &&
      (gpu.vram === undefined || count(gpu.vram, 2 ** 40));
    if (!ok) throw bad(`gpus[${i}]`, "must be {vendor: nvidia|amd, count, model?, vram? (MB)}");
  });
  const kinds = ["wasm", "container"];
  if (
    runtimes !== undefined &&
    (!Array.isArray(runtimes) || runtimes.length > 2 || !runtimes.every((r) => kinds.includes(r)))
  ) {
    throw bad("runtimes", 'must be a list of "wasm" and "container"');
  }
  if (proxy !== undefined && (typeof proxy !== "string" || !PROXY_ADDRESS.test(proxy))) {
    throw bad("proxy", "must be host:port (the address of the server's proxy)");
  }
  if (worker !== undefined && typeof worker !== "boolean") throw bad("worker", "must be true or false");
  if (noWorkloads !== undefined && typeof noWorkloads !== "boolean") throw bad("noWorkloads", "must be true or false");
  if (name !== undefined && (typeof name !== "string" || !LABEL_KEY.test(name))) {
    throw bad("name", "must be 1-63 letters, digits, . _ / - (starting and ending with a letter or digit)");
  }
  return {
    ...(name !== undefined && { name: name as string }),
    ...(worker === true && { worker: true }),
    ...(noWorkloads === true && { noWorkloads: true }),
    ...(runtimes !== undefined && { runtimes: [...new Set(runtimes as RuntimeKind[])] }),
    ...(proxy !== undefined && { proxy: proxy as string }),
    labels: Object.fromEntries(entries as [string, string][]),
    capacity: { memory: c.memory as number, cpuMillis: c.cpuMillis as number },
    gpus: gpus.map((g) => {
      const { vendor, count, model, vram } = g as NodeGpu;
      return { vendor, count, ...(model !== undefined && { model }), ...(vram !== undefined && { vram }) };
    }),
  };
}

/**
 * This machine's facts: its cores and memory as the system reports them, the GPUs found, `labels`, the runtimes it
 * offers and where its proxy listens.
 */
export function localFacts(
  labels: Record<string, string>,
  gpus: NodeGpu[],
  runtimes: RuntimeKind[] = ["wasm"],
  proxy?: string,
): NodeFacts {
  return {
    labels,
    capacity: { memory: Deno.systemMemoryInfo().total, cpuMillis: navigator.hardwareConcurrency * 1000 },
    gpus,
    runtimes,
    ...(proxy !== undefined && { proxy }),
  };
}

/** The runtimes a node offers: Wasm always, containers while its Docker engine answers. */
export async function offeredRuntimes(engine: { ping(): Promise<boolean> }): Promise<RuntimeKind[]> {
  return await engine.ping() ? ["wasm", "container"] : ["wasm"];
}

/** Whether two sets of facts say the same (labels in any order). */
export function sameFacts(a: NodeFacts | undefined, b: NodeFacts): boolean {
  if (!a) return false;
  const sorted = (f: NodeFacts) => JSON.stringify({ ...f, labels: Object.entries(f.labels).sort() });
  return sorted(a) === sorted(b);
}
