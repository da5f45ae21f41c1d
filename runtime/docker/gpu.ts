/**
 * GPU discovery: what a node reports (vendor, model, count, VRAM), read from
 * `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`
 * and `rocm-smi --showproductname --showmeminfo vram --json`, plus the AMD
 * device nodes and the host's video/render group ids for passthrough.
 */

import type { NodeGpu } from "../../config/mod.ts";
import type { HostFacts } from "./spec.ts";

export const NVIDIA_SMI_ARGS = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"];
export const ROCM_SMI_ARGS = ["--showproductname", "--showmeminfo", "vram", "--json"];

/** One line per GPU: `0, NVIDIA H100 80GB HBM3, 81559` (MiB). */
export function parseNvidiaSmi(output: string): NodeGpu[] {
  const byModel = new Map<string, NodeGpu>();
  for (const line of output.split("\n")) {
    const cells = line.split(",").map((c) => c.trim());
    if (cells.length < 3 || !/^\d+$/.test(cells[0])) continue;
    const vram = Number(cells[2]);
    addGpu(byModel, { vendor: "nvidia", count: 1, model: cells[1], ...(Number.isFinite(vram) && { vram }) });
  }
  return [...byModel.values()];
}

/** rocm-smi's JSON: `{"card0": {"Card series": ..., "VRAM Total Memory (B)": ...}}`. */
export function parseRocmSmi(output: string): NodeGpu[] {
  let data: Record<string, Record<string, string>>;
  try {
    data = JSON.parse(output);
  } catch {
    return [];
  }
  const byModel = new Map<string, NodeGpu>();
  for (const [card, info] of Object.entries(data)) {
    if (!/^card\d+$/.test(card) || typeof info !== "object") continue;
    const model = info["Card series"] ?? info["Card Series"] ?? info["Card model"] ?? info["Device Name"] ?? "AMD GPU";
    const bytes = Number(info["VRAM Total Memory (B)"]);
    addGpu(byModel, {
      vendor: "amd",
      count: 1,
      model,
      ...(Number.isFinite(bytes) && bytes > 0 && { vram: Math.round(bytes / 2 ** 20) }),
    });
  }
  return [...byModel.values()];
}

function addGpu(byModel: Map<string, NodeGpu>, gpu: NodeGpu): void {
  const key = `${gpu.vendor} ${gpu.model} ${gpu.vram ?? ""}`;
  const seen = byModel.get(key);
  if (seen) seen.count++;
  else byModel.set(key, gpu);
}

/** gid of each group named in `/etc/group` text. */
export function parseGroups(etcGroup: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of etcGroup.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name && /^\d+$/.test(gid ?? "")) out[name] = Number(gid);
  }
  return out;
}

/** Runs a discovery tool; undefined when it is not installed or fails. */
export type RunTool = (cmd: string, args: string[]) => Promise<string | undefined>;

export const runTool: RunTool = async (cmd, args) => {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined; // not installed
  }
};

/** The node's GPUs, from whichever vendor tool is present. */
export async function discoverGpus(run: RunTool = runTool): Promise<NodeGpu[]> {
  const nvidia = await run("nvidia-smi", NVIDIA_SMI_ARGS);
  const amd = await run("rocm-smi", ROCM_SMI_ARGS);
  return [...(nvidia ? parseNvidiaSmi(nvidia) : []), ...(amd ? parseRocmSmi(amd) : [])];
}

/** Host facts for AMD passthrough: group ids and /dev/dri nodes (cardN / renderD(128+N)). */
export async function readHostFacts(): Promise<HostFacts> {
  let groups: Record<string, number> = {};
  try {
    groups = parseGroups(await Deno.readTextFile("/etc/group"));
  } catch {
    // no /etc/group: no GroupAdd
  }
  const amdDevices: HostFacts["amdDevices"] = [];
  try {
    const cards = [...Deno.readDirSync("/dev/dri")].map((e) => e.name).filter((n) => /^card\d+$/.test(n)).sort();
    for (const card of cards) {
      const n = Number(card.slice(4));
      amdDevices.push({ card: `/dev/dri/${card}`, render: `/dev/dri/renderD${128 + n}` });
    }
  } catch {
    // no /dev/dri on this host
  }
  return { groups: { video: groups.video, render: groups.render }, amdDevices };
}
