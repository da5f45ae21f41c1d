/**
 * What Orca left on the engine that nothing owns any more (a crash between
 * steps, a version retired while the server was down): containers and project
 * networks labelled as this node's. Volumes are never collected: Orca labels
 * none, and they hold data.
 */

import type { Engine } from "./engine.ts";

export interface Orphan {
  kind: "container" | "network";
  id: string;
  name: string;
  /** The workload a container was made for. */
  workload: string;
}

/** This node's containers not in `owned`, and its project networks not in `used` that no container is on. */
export async function findOrphans(
  engine: Engine,
  node: string,
  owned: ReadonlySet<string>,
  used: ReadonlySet<string>,
): Promise<Orphan[]> {
  const filters = JSON.stringify({ label: ["orca.managed=true", `orca.node=${node}`] });
  const containers = await engine.request<{ Id: string; Names: string[]; Labels: Record<string, string> }[]>(
    "GET",
    "/containers/json",
    { query: { all: true, filters } },
  );
  const orphans: Orphan[] = containers.filter((c) => !owned.has(c.Id)).map((c) => ({
    kind: "container",
    id: c.Id,
    name: c.Names[0]?.replace(/^\//, "") ?? c.Id,
    workload: c.Labels["orca.workload"] ?? "",
  }));
  const networks = await engine.request<{ Id: string; Name: string }[]>("GET", "/networks", { query: { filters } });
  for (const n of networks) {
    if (used.has(n.Name)) continue;
    const inspected = await engine.request<{ Containers?: Record<string, unknown> }>("GET", `/networks/${n.Id}`)
      .catch(() => undefined);
    if (inspected && Object.keys(inspected.Containers ?? {}).length === 0) {
      orphans.push({ kind: "network", id: n.Id, name: n.Name, workload: "" });
    }
  }
  return orphans;
}

export async function removeOrphan(engine: Engine, orphan: Orphan): Promise<void> {
  if (orphan.kind === "container") {
    await engine.request("DELETE", `/containers/${orphan.id}`, { query: { force: true } });
  } else await engine.request("DELETE", `/networks/${orphan.id}`);
}
