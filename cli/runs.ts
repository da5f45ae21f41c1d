/** `orca runs <service>`: the cron run history of a service. */

import type { CronRun } from "../triggers/cron_scheduler.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";
import { resolveName } from "./logs.ts";
import { OrcaError } from "../errors.ts";

export const runsCommand: Command = {
  name: "runs",
  summary: "List a service's cron runs: scheduled time, start delay, duration, result, output tail.",
  usage: "orca runs <service|project/service> [--limit N] [--json]",
  flags: [
    "--limit N         how many runs, newest first (default 20)",
    "--json            print the runs as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, limit: { type: "string" }, json: { type: "boolean" } },
  maxArgs: 1,
  async run(values, args) {
    const service = args[0];
    if (!service) {
      throw new OrcaError("usage", "which service? `orca runs <service>`", { hint: "orca status lists them" });
    }
    const limit = (values.limit as string | undefined) ?? "20";
    if (!/^\d+$/.test(limit)) throw new OrcaError("usage", `--limit must be a whole number, got ${limit}`);
    const client = await Client.fromFlags(values);
    const path = service.includes("/") ? service : await resolveName(client, service);
    const { runs } = await client.json<{ runs: CronRun[] }>(`/services/${path}/runs?limit=${limit}`);
    if (values.json) {
      console.log(JSON.stringify(runs, null, 2));
      return 0;
    }
    if (runs.length === 0) {
      console.log(`no runs yet for ${path}`);
      return 0;
    }
    const rows = runs.map((r) => [
      new Date(r.scheduledAt).toISOString(),
      `${r.startedAt - r.scheduledAt}ms`,
      `${r.durationMs.toFixed(1)}ms`,
      r.status === "failed" ? `failed (${r.error ?? `exit ${r.exitCode}`})` : r.status,
      r.outputTail.trim().split("\n").pop()?.slice(0, 60) ?? "",
    ]);
    console.log(table(["SCHEDULED", "DELAY", "DURATION", "RESULT", "OUTPUT (last line)"], rows));
    return 0;
  },
};
