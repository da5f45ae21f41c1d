/** `orca rollout status <service>`, and the wait `orca deploy` makes for the canaries it started. */

import type { RolloutStatus } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";
import { resolveName } from "./logs.ts";

export const rolloutCommand: Command = {
  name: "rollout",
  summary: "Show a service's canary: its share of requests, what was measured of both versions, and its outcome.",
  usage: "orca rollout status <service|project/service> [--json]",
  flags: ["--json           print the status as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 2,
  async run(values, args) {
    const [sub, service] = args;
    if (sub !== "status" || !service) {
      throw new OrcaError("usage", sub === "status" ? "which service?" : `unknown rollout command "${sub ?? ""}"`, {
        hint: `usage: ${rolloutCommand.usage}`,
      });
    }
    const client = await Client.fromFlags(values);
    const path = service.includes("/") ? service : await resolveName(client, service);
    const status = await client.json<RolloutStatus>(`/services/${path}/rollout`);
    console.log(values.json ? JSON.stringify(status, null, 2) : describeRollout(status));
    return 0;
  },
};

/** A canary as `orca rollout status` prints it. */
export function describeRollout(s: RolloutStatus): string {
  const now = Date.now();
  const when = s.state === "analysing"
    ? `analysing, ${Math.max(0, Math.ceil((s.endsAt - now) / 1000))} s left`
    : `${s.state === "promoted" ? "promoted" : "rolled back"} at ${new Date(s.endedAt!).toISOString()}`;
  const limit = `error rate <= ${s.limits.maxErrorRate}${s.limits.maxP99Ms ? `, p99 <= ${s.limits.maxP99Ms} ms` : ""}`;
  const row = (what: string, f: RolloutStatus["canary"], share: number) => [
    what,
    `v${f.version}`,
    `${share}%`,
    String(f.requests),
    String(f.errors),
    `${(f.errorRate * 100).toFixed(1)}%`,
    f.p99Ms === undefined ? "-" : `${f.p99Ms} ms`,
  ];
  return [
    `${s.service}: canary ${when} (limits: ${limit})`,
    table(["VERSION", "", "SHARE", "REQUESTS", "5XX", "ERROR RATE", "P99"], [
      row("stable", s.stable, 100 - s.percent),
      row("canary", s.canary, s.percent),
    ]),
    ...(s.reason ? [`outcome: ${s.reason}`] : []),
  ].join("\n");
}

/** Waits for the canaries of `services` to end, printing each outcome; whether every one was promoted. */
export async function awaitCanaries(client: Client, services: string[], quiet = false): Promise<boolean> {
  let promoted = true;
  const say = quiet ? () => {} : (text: string) => console.log(text);
  for (const service of services) {
    let status = await client.json<RolloutStatus>(`/services/${service}/rollout`);
    say(
      `canary of ${service}: ${status.percent}% of requests for ${
        (status.endsAt - status.startedAt) / 1000
      } s; waiting for its outcome (orca rollout status ${service})`,
    );
    while (status.state === "analysing") {
      await new Promise((r) => setTimeout(r, 1000));
      status = await client.json<RolloutStatus>(`/services/${service}/rollout`);
    }
    say(describeRollout(status));
    if (status.state !== "promoted") promoted = false;
  }
  return promoted;
}
