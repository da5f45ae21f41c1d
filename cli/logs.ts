/** `orca logs <service> [-f]`: what a service's guests wrote to stdout and stderr. */

import { OrcaError } from "../errors.ts";
import type { LogLine } from "../runtime/mod.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, type Values } from "./command.ts";
import { forTerminal } from "./terminal.ts";

export const logsCommand: Command = {
  name: "logs",
  summary: "Print a service's logs (guest stdout/stderr and Orca's own notes about it).",
  usage: "orca logs <service|project/service> [-f] [--tail N]\n       orca logs --access [service] [-f] [--tail N]",
  flags: [
    "-f, --follow      keep printing new lines",
    "--tail N          only the last N lines",
    "--access          the proxy's access log of the server asked (JSON lines: service, status, ms, bytes)",
    ...clientFlags,
  ],
  options: {
    ...clientOptions,
    follow: { type: "boolean", short: "f" },
    tail: { type: "string" },
    access: { type: "boolean" },
  },
  maxArgs: 1,
  async run(values, args) {
    const service = args[0];
    if (values.access) return await accessLog(values, service);
    if (!service) {
      throw new OrcaError("usage", "which service? `orca logs <service>`", { hint: "orca status lists them" });
    }
    const tail = values.tail as string | undefined;
    if (tail !== undefined && !/^\d+$/.test(tail)) {
      throw new OrcaError("usage", `--tail must be a whole number, got ${tail}`);
    }
    const [project, name] = service.includes("/") ? service.split("/", 2) : ["_", service];
    const client = await Client.fromFlags(values);
    const query = new URLSearchParams();
    if (values.follow) query.set("follow", "1");
    if (tail !== undefined) query.set("tail", tail);
    const path = project === "_" ? await resolveName(client, name) : `${project}/${name}`;
    const res = await client.fetch(`/services/${path}/logs?${query}`);
    const decoder = new TextDecoderStream();
    let pending = "";
    for await (const chunk of res.body!.pipeThrough(decoder)) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const raw of lines) {
        if (!raw) continue;
        const line = JSON.parse(raw) as LogLine;
        console.log(`${new Date(line.at).toISOString()} ${line.stream.padEnd(6)} ${forTerminal(line.text)}`);
      }
    }
    return 0;
  },
};

/** `orca logs --access [service]`: the access log's JSON lines, as they are. */
async function accessLog(values: Values, service: string | undefined): Promise<number> {
  const tail = values.tail as string | undefined;
  if (tail !== undefined && !/^\d+$/.test(tail)) {
    throw new OrcaError("usage", `--tail must be a whole number, got ${tail}`);
  }
  const client = await Client.fromFlags(values);
  const query = new URLSearchParams();
  if (values.follow) query.set("follow", "1");
  if (tail !== undefined) query.set("tail", tail);
  if (service !== undefined) {
    query.set("service", service.includes("/") ? service : await resolveName(client, service));
  }
  const res = await client.fetch(`/access-log?${query}`);
  let pending = "";
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const raw of lines) if (raw) console.log(forTerminal((JSON.parse(raw) as LogLine).text));
  }
  return 0;
}

/** Finds the project of a bare service name (ambiguity is an error). */
export async function resolveName(client: Client, name: string): Promise<string> {
  const { services } = await client.json<{ services: { project: string; name: string }[] }>("/services");
  const matches = services.filter((s) => s.name === name);
  if (matches.length === 1) return `${matches[0].project}/${name}`;
  if (matches.length > 1) {
    throw new OrcaError("usage", `service name "${name}" is ambiguous`, {
      hint: `use one of: ${matches.map((s) => `${s.project}/${s.name}`).join(", ")}`,
    });
  }
  throw new OrcaError("not_found", `no service "${name}"`, { hint: "orca status lists the deployed services" });
}
