/** `orca nodes`: the servers of the cluster, their Raft state, runtimes and GPUs. `orca cluster remove`. */

import type { NodeReport } from "../control/api.ts";
import type { MemberReport } from "../control/cluster.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";

type NodeRow = MemberReport & Partial<NodeReport> & { replicas?: number };

export const nodesCommand: Command = {
  name: "nodes",
  summary: "List the nodes: id, address, Raft role, term, commit and applied index, lag, runtimes, capacity, " +
    "replicas, GPUs, labels. `orca nodes drain <id>` moves a node's replicas off it one at a time (each new one " +
    "ready before the old one stops) and places nothing new there; `orca nodes undrain <id>` puts it back.",
  usage: "orca nodes [--json] | orca nodes drain <node-id> | orca nodes undrain <node-id>",
  flags: ["--json           print as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 2,
  async run(values, args) {
    const client = await Client.fromFlags(values);
    if (args.length > 0) {
      const [action, id] = args;
      if ((action !== "drain" && action !== "undrain") || !id) {
        throw new OrcaError("usage", "usage: orca nodes drain <node-id> | orca nodes undrain <node-id>", {
          hint: "orca nodes lists the node ids",
        });
      }
      await client.json(`/cluster/nodes/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      console.log(
        action === "drain"
          ? `draining ${id}: its replicas move one at a time; orca nodes shows the progress`
          : `${id} is back in service`,
      );
      return 0;
    }
    const { nodes } = await client.json<{ nodes: NodeRow[] }>("/nodes");
    if (values.json) {
      console.log(JSON.stringify(nodes, null, 2));
      return 0;
    }
    const dash = (v: unknown) => v === undefined ? "-" : String(v);
    console.log(table(
      [
        "NODE",
        "ADDRESS",
        "ROLE",
        "TERM",
        "COMMIT",
        "APPLIED",
        "LAG",
        "CONTACT",
        "RUNTIMES",
        "WASM HOSTS",
        "CAPACITY",
        "REPLICAS",
        "GPUS",
        "LABELS",
      ],
      nodes.map((n) => [
        n.id,
        n.address || "-",
        `${n.role}${n.leader ? " (leader)" : ""}`,
        dash(n.term),
        dash(n.commit),
        dash(n.applied),
        dash(n.lag),
        n.error
          ? `unreachable${n.lastContactMs !== undefined ? ` (${Math.round(n.lastContactMs / 1000)}s ago)` : ""}`
          : "ok",
        n.runtimes ? Object.entries(n.runtimes).filter(([, up]) => up).map(([k]) => k).join(", ") : "-",
        n.wasmHosts ? `${n.wasmHosts.workers} (${n.wasmHosts.restarts} restarted)` : "-",
        n.capacity ? `${n.capacity.cpuMillis / 1000} cores, ${(n.capacity.memory / 2 ** 30).toFixed(1)} GiB` : "-",
        `${n.replicas ?? 0}${n.drain ? (n.replicas ? " (draining)" : " (drained)") : ""}`,
        n.gpus?.map((g) => `${g.count}x ${g.model ?? g.vendor}${g.vram ? ` (${g.vram} MiB)` : ""}`).join(", ") || "-",
        Object.entries(n.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",") || "-",
      ]),
    ));
    return 0;
  },
};

export const clusterCommand: Command = {
  name: "cluster",
  summary: "Change the cluster's servers: `orca cluster remove <node-id>` takes one out safely.",
  usage: "orca cluster remove <node-id>",
  flags: [...clientFlags],
  options: { ...clientOptions },
  maxArgs: 2,
  async run(values, args) {
    const [action, id] = args;
    if (action !== "remove" || !id) {
      throw new OrcaError("usage", "usage: orca cluster remove <node-id>", { hint: "orca nodes lists the node ids" });
    }
    const client = await Client.fromFlags(values);
    await client.json(`/cluster/members/${encodeURIComponent(id)}`, { method: "DELETE" });
    console.log(`removed ${id} from the cluster`);
    return 0;
  },
};
