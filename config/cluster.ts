/** cluster.toml: `[cluster]`, `[cluster.network]`, `[[node]]` (seed 000), `[gitops]` (seed 004). */

import { parseGitops } from "./gitops.ts";
import { TableReader } from "./reader.ts";
import { checkRefs } from "./secrets.ts";
import { MAX_VRAM_MB, parseToml } from "./service.ts";
import type { ClusterConfig, NodeGpu } from "./types.ts";

/** The configuration used when a directory has no cluster.toml. */
export const defaultCluster: ClusterConfig = { cluster: { name: "orca", log_level: "info" }, nodes: [] };

export function parseClusterFile(text: string, file: string): ClusterConfig {
  const doc = parseToml(text, file);
  const top = new TableReader(doc, { file, text }, []);
  const c = top.table("cluster");
  const config: ClusterConfig = { cluster: { ...defaultCluster.cluster }, nodes: [] };
  if (c) {
    config.cluster.name = c.string("name", { pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/ }) ?? "orca";
    const domain = c.string("domain");
    if (domain) config.cluster.domain = domain;
    const email = c.string("acme_email", { pattern: /^[^@\s]+@[^@\s]+$/, patternHint: "an e-mail address" });
    if (email) config.cluster.acme_email = email;
    config.cluster.log_level = c.string("log_level", {
      pattern: /^(error|warn|info|debug|trace)$/,
      patternHint: "use error, warn, info, debug or trace",
    }) ?? "info";
    const n = c.table("network");
    if (n) {
      const provider = n.string("provider", {
        required: true,
        pattern: /^(netbird|none)$/,
        patternHint: 'use "netbird" or "none"',
      })!;
      const setupKey = n.string("setup_key");
      if (setupKey !== undefined) checkRefs(n, [...n.path("setup_key")], setupKey);
      config.cluster.network = { provider, ...(setupKey !== undefined && { setup_key: setupKey }) };
      n.done();
    }
    c.done();
  }
  for (const r of top.tables("node")) {
    const gpus: NodeGpu[] = r.tables("gpus").map((g) => {
      const gpu: NodeGpu = {
        vendor: g.string("vendor", {
          required: true,
          pattern: /^(nvidia|amd)$/,
          patternHint: 'use "nvidia" or "amd"',
        }) as NodeGpu["vendor"],
        count: g.number("count", { integer: true, min: 1, max: 64 }) ?? 1,
      };
      const model = g.string("model");
      if (model) gpu.model = model;
      const vram = g.number("vram", { integer: true, min: 1, max: MAX_VRAM_MB });
      if (vram) gpu.vram = vram;
      g.done();
      return gpu;
    });
    const name = r.string("name");
    config.nodes.push({
      address: r.string("address", { required: true, pattern: /^[A-Za-z0-9.:\[\]-]+$/ })!,
      ...(name !== undefined && { name }),
      labels: r.stringMap("labels") ?? {},
      gpus,
    });
    r.done();
  }
  const g = top.table("gitops");
  if (g) config.gitops = parseGitops(g);
  top.done();
  return config;
}
