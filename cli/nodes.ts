/** `orca nodes`: the nodes of the cluster, their runtimes and GPUs. */

import type { NodeReport } from "../control/api.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";

export const nodesCommand: Command = {
  name: "nodes",
  summary: "List the nodes: id, Raft role, term, commit and applied index, version, runtimes, GPUs discovered.",
  usage: "orca nodes [--json]",
  flags: ["--json           print as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 0,
  async run(values) {
    const client = await Client.fromFlags(values);
    const { nodes } = await client.json<{ nodes: NodeReport[] }>("/nodes");
    if (values.json) {
      console.log(JSON.stringify(nodes, null, 2));
      return 0;
    }
    console.log(table(
      ["NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "VERSION", "RUNTIMES", "WASM HOSTS", "GPUS"],
      nodes.map((n) => [
        n.id,
        n.member ? `${n.member.role}${n.member.leader ? " (leader)" : ""}` : "-",
        String(n.member?.term ?? "-"),
        String(n.member?.commit ?? "-"),
        String(n.member?.applied ?? "-"),
        n.version,
        Object.entries(n.runtimes).filter(([, up]) => up).map(([k]) => k).join(", "),
        n.wasmHosts ? `${n.wasmHosts.workers} (${n.wasmHosts.restarts} restarted)` : "-",
        n.gpus.map((g) => `${g.count}x ${g.model ?? g.vendor}${g.vram ? ` (${g.vram} MiB)` : ""}`).join(", ") || "-",
      ]),
    ));
    return 0;
  },
};
