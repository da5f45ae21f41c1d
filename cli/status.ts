/** `orca status`: the deployed services and how they are doing. */

import type { DomainTls, ServiceStatus } from "../control/mod.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table } from "./command.ts";

export const statusCommand: Command = {
  name: "status",
  summary: "Show the deployed services: project, name, runtime, routes, state, instances, the nodes of its replicas.",
  usage: "orca status [--json]",
  flags: ["--json           print the services as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 0,
  async run(values) {
    const client = await Client.fromFlags(values);
    const [{ services }, { domains }] = await Promise.all([
      client.json<{ services: ServiceStatus[] }>("/services"),
      client.json<{ domains: DomainTls[] }>("/certificates"),
    ]);
    if (values.json) {
      console.log(JSON.stringify(services, null, 2));
      return 0;
    }
    if (services.length === 0) {
      console.log("no services deployed; run `orca deploy DIR`");
      return 0;
    }
    const rows = services.map((s) => [
      s.project,
      s.name,
      s.runtime,
      s.routes.join(" ") || "-",
      s.message ? `${s.state} (${s.message})` : s.state,
      String(s.instances),
      `v${s.version}`,
      nodesOf(s),
    ]);
    const header = ["PROJECT", "NAME", "RUNTIME", "ROUTES", "STATE", "INSTANCES", "VERSION", "NODES"];
    if (services.some((s) => s.nextRuns || s.lastRun)) {
      header.push("NEXT RUN", "LAST RUN");
      services.forEach((s, i) => {
        const next = s.nextRuns?.map((n) => n.at).filter((at): at is number => at !== undefined).sort()[0];
        rows[i].push(next ? new Date(next).toISOString() : "-");
        rows[i].push(
          s.lastRun ? `${s.lastRun.status}${s.lastRun.exitCode ? ` (exit ${s.lastRun.exitCode})` : ""}` : "-",
        );
      });
    }
    console.log(table(header, rows));
    const notes = services.flatMap(replicaNotes);
    if (notes.length > 0) console.log(`\n${notes.join("\n")}`);
    if (domains.length > 0) console.log(`\n${domainTable(domains)}`);
    return 0;
  },
};

/** The replicas the watchdog restarted or holds out of the routes, with the last lines of one that crashed. */
function replicaNotes(s: ServiceStatus): string[] {
  const now = Date.now();
  return (s.replicas ?? []).filter((r) => r.state !== "running" || r.restarts > 0).flatMap((r) => {
    const parts = [`${r.state}`, `${r.restarts} restart(s) in 10 min`];
    if (r.last?.exitCode !== undefined) parts.push(`last exit code ${r.last.exitCode}`);
    if (r.nextRestartAt) parts.push(`next restart in ${Math.ceil((r.nextRestartAt - now) / 1000)} s`);
    const head = `${s.project}/${s.name} replica ${r.replica}: ${parts.join(", ")}`;
    const why = r.last ? [`  last restart: ${r.last.reason}`] : [];
    const lines = r.state === "crashloop" ? (r.last?.lines ?? []).map((l) => `  | ${l}`) : [];
    return [head, ...why, ...lines];
  });
}

/**
 * Where a service's replicas run: each node (its id's first 8 characters) with its count, and its state unless
 * ready; `*`: every server.
 */
function nodesOf(s: ServiceStatus): string {
  if (!s.placements) return "*";
  if (s.placements.length === 0) return "-";
  const counts = new Map<string, { n: number; state: string }>();
  for (const p of s.placements) counts.set(p.node, { n: (counts.get(p.node)?.n ?? 0) + 1, state: p.state });
  return [...counts].map(([node, { n, state }]) =>
    `${node.slice(0, 8)}${n > 1 ? `x${n}` : ""}${state === "ready" ? "" : `(${state})`}`
  ).join(",");
}

/** Each domain's HTTPS: where its certificate comes from, its state and expiry, and the CA's last error. */
function domainTable(domains: DomainTls[]): string {
  const now = Date.now();
  const rows = domains.map((d) => {
    let state: string = d.state;
    if (d.error !== undefined) {
      const retry = d.retryAt === undefined ? "" : `, retry in ${Math.max(0, Math.ceil((d.retryAt - now) / 1000))} s`;
      state += ` (${d.attempts} failed${retry}: ${d.error})`;
    }
    return [d.domain, d.service, d.source, state, d.notAfter ? new Date(d.notAfter).toISOString() : "-"];
  });
  return table(["DOMAIN", "SERVICE", "TLS", "STATE", "EXPIRES"], rows);
}
