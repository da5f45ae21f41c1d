/** `orca history [service]` and `orca rollback <service>`: the deploys made, and going back to an earlier version. */

import type { DeployResult, HistoryEntry } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";
import { resolveName } from "./logs.ts";

/** Who runs this command, for the history: `user@host`. */
export function whoAmI(): string {
  const user = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "someone";
  return `${user}@${Deno.hostname()}`.replace(/[^\x20-\x7e]/g, "?").slice(0, 128);
}

export const historyCommand: Command = {
  name: "history",
  summary: "List the deploys, newest first: what each did to each service, by whom, with which module or image.",
  usage: "orca history [service|project/service] [--limit N] [--json]",
  flags: ["--limit N        at most N rows (default 50)", "--json           print the rows as JSON", ...clientFlags],
  options: { ...clientOptions, limit: { type: "string" }, json: { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    const client = await Client.fromFlags(values);
    const query = new URLSearchParams();
    if (args[0]) query.set("service", args[0].includes("/") ? args[0] : await resolveName(client, args[0]));
    if (values.limit !== undefined) query.set("limit", values.limit as string);
    const { history } = await client.json<{ history: HistoryEntry[] }>(`/history?${query}`);
    if (values.json) {
      console.log(JSON.stringify(history, null, 2));
      return 0;
    }
    if (history.length === 0) {
      console.log(args[0] ? `no deploys of ${args[0]} recorded` : "no deploys yet; run `orca deploy DIR`");
      return 0;
    }
    const rows = history.map((h) => [
      String(h.deploy),
      new Date(h.at).toISOString().replace(/\.\d+Z$/, "Z"),
      h.service,
      h.change,
      h.version === undefined ? "-" : `v${h.version}`,
      h.artifact ? shortArtifact(h.artifact) : "-",
      h.origin ?? "-",
    ]);
    console.log(table(["DEPLOY", "TIME", "SERVICE", "CHANGE", "VERSION", "MODULE/IMAGE", "BY"], rows));
    return 0;
  },
};

export const rollbackCommand: Command = {
  name: "rollback",
  summary: "Deploy a service's previous version again (or the one a deploy left), swapped with no request dropped.",
  usage: "orca rollback <service|project/service> [--to DEPLOY]",
  flags: [
    "--to DEPLOY      the version deploy DEPLOY left it at (orca history lists them; default: the one before)",
    "--json           print the result as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, to: { type: "string" }, json: { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    if (!args[0]) throw new OrcaError("usage", "which service?", { hint: `usage: ${rollbackCommand.usage}` });
    const toText = values.to as string | undefined;
    const to = toText === undefined ? undefined : /^[0-9]{1,15}$/.test(toText) ? Number(toText) : NaN;
    if (to !== undefined && !(to >= 1)) {
      throw new OrcaError("usage", `--to must be a deploy id (orca history lists them); got ${toText}`);
    }
    const client = await Client.fromFlags(values);
    const path = args[0].includes("/") ? args[0] : await resolveName(client, args[0]);
    const result = await client.json<DeployResult & { from: number; to: number }>(`/services/${path}/rollback`, {
      method: "POST",
      body: JSON.stringify({ ...(to !== undefined && { to }), by: whoAmI() }),
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else console.log(`deploy ${result.id}: ${path} rolled back from v${result.from} to the spec of v${result.to}`);
    return 0;
  },
};

/** A module hash's first 12 characters; an image as it is. */
function shortArtifact(artifact: string): string {
  return /^[0-9a-f]{64}$/.test(artifact) ? artifact.slice(0, 12) : artifact;
}

export const redeployCommand: Command = {
  name: "redeploy",
  summary: "Start a service anew at a new version of what it runs, on the nodes it is placed on (no request dropped).",
  usage: "orca redeploy <service|project/service>",
  flags: [
    "--json           print the result as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    if (!args[0]) throw new OrcaError("usage", "which service?", { hint: `usage: ${redeployCommand.usage}` });
    const client = await Client.fromFlags(values);
    const path = args[0].includes("/") ? args[0] : await resolveName(client, args[0]);
    const result = await client.json<DeployResult>(`/services/${path}/redeploy`, {
      method: "POST",
      body: JSON.stringify({ by: whoAmI() }),
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else console.log(`deploy ${result.id}: ${path} started anew`);
    return 0;
  },
};
