/** `orca rm`, `orca exec` and `orca stats`: act on one deployed service. */

import { formatMemory } from "../config/mod.ts";
import type { DeployResult } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import type { ResourceStats } from "../runtime/mod.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command } from "./command.ts";
import { resolveName } from "./logs.ts";

async function target(values: Parameters<typeof Client.fromFlags>[0], service: string | undefined, usage: string) {
  if (!service) throw new OrcaError("usage", "which service?", { hint: `usage: ${usage}` });
  const client = await Client.fromFlags(values);
  return { client, path: service.includes("/") ? service : await resolveName(client, service) };
}

export const rmCommand: Command = {
  name: "rm",
  summary: "Remove a deployed service: its routes go at once, its workload after in-flight work ends.",
  usage: "orca rm <service|project/service>",
  flags: clientFlags,
  options: clientOptions,
  maxArgs: 1,
  async run(values, args) {
    const { client, path } = await target(values, args[0], rmCommand.usage);
    const r = await client.json<DeployResult>(`/services/${path}`, { method: "DELETE" });
    console.log(`deploy ${r.id}: removed ${path}`);
    return 0;
  },
};

export const execCommand: Command = {
  name: "exec",
  summary: "Run a command in a service's workload (its first replica) and print its output.",
  usage: "orca exec <service|project/service> -- <command> [args...]",
  flags: clientFlags,
  options: clientOptions,
  maxArgs: Infinity,
  async run(values, args) {
    const [service, ...cmd] = args;
    if (cmd.length === 0) throw new OrcaError("usage", "exec needs a command", { hint: `usage: ${execCommand.usage}` });
    const { client, path } = await target(values, service, execCommand.usage);
    const r = await client.json<{ exitCode: number; stdout: string; stderr: string }>(`/services/${path}/exec`, {
      method: "POST",
      body: JSON.stringify({ cmd }),
    });
    await Deno.stdout.write(new TextEncoder().encode(r.stdout));
    await Deno.stderr.write(new TextEncoder().encode(r.stderr));
    return r.exitCode === 0 ? 0 : 1;
  },
};

export const statsCommand: Command = {
  name: "stats",
  summary: "Show a service's live resource use: memory (and limit), CPU, instances, requests; summed over its nodes.",
  usage: "orca stats <service|project/service> [--json]",
  flags: ["--json           print as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    const { client, path } = await target(values, args[0], statsCommand.usage);
    type NodeStats = { node: string } & (ResourceStats | { error: string });
    const s = await client.json<ResourceStats & { nodes?: NodeStats[] }>(`/services/${path}/stats`);
    if (values.json) {
      console.log(JSON.stringify(s, null, 2));
      return 0;
    }
    const line = (name: string, s: ResourceStats) => {
      const limit = s.memoryLimitBytes ? ` / ${formatMemory(s.memoryLimitBytes)}` : "";
      return `${name}: memory ${formatMemory(s.memoryBytes)}${limit}` +
        (s.cpuPercent !== undefined ? `, cpu ${s.cpuPercent.toFixed(1)}%` : "") +
        `, ${s.instances} instance(s)` + (s.instancesMade !== undefined ? ` (${s.instancesMade} made)` : "") +
        `, ${s.requests} request(s), ${s.errors} error(s)` +
        (s.incidents ? `, ${s.incidents} guest host(s) killed` : "");
    };
    console.log(line(path, s));
    // A service placed on several nodes: each node's share.
    if ((s.nodes?.length ?? 0) > 1) {
      for (const n of s.nodes!) console.log("error" in n ? `  ${n.node}: ${n.error}` : line(`  ${n.node}`, n));
    }
    return 0;
  },
};
