/** What a deploy request is, and how specs are compared: validation outside the state machine. */

import { readService, type ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import type { DeploySummary, StoredService } from "./store.ts";

export interface DeployRequest {
  /** Project name -> its complete list of services. */
  projects: Record<string, unknown[]>;
  /** Who deploys, as the client says (`user@host`), for the history. */
  by?: string;
}

/** Who made a deploy request (its `by`), checked: printable ASCII, at most 128 characters. */
export function requester(request: DeployRequest): string | undefined {
  const by = request.by;
  if (by === undefined) return undefined;
  if (typeof by !== "string" || !/^[\x20-\x7e]{1,128}$/.test(by)) {
    throw new OrcaError("invalid", "by must be 1-128 printable ASCII characters: who deploys, e.g. user@host");
  }
  return by;
}

export function keyOf(spec: ServiceSpec): string {
  return `${spec.project}/${spec.name}`;
}

/** A service key's project and name. */
export function splitKey(key: string): [project: string, name: string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** The key (`project/name`) that `service` (a key, or a name unique among `keys`) names, or why none. */
export function resolveKey(keys: string[], service: string): string {
  if (keys.includes(service)) return service;
  const matches = keys.filter((k) => k.endsWith(`/${service}`));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new OrcaError("invalid", `service name "${service}" is ambiguous`, {
      hint: `use one of: ${matches.join(", ")}`,
    });
  }
  throw new OrcaError("not_found", `no service "${service}"`, { hint: "orca status lists the deployed services" });
}

export function validateRequest(request: DeployRequest): ServiceSpec[] {
  if (
    typeof request !== "object" || request === null || Array.isArray(request) ||
    typeof request.projects !== "object" || request.projects === null || Array.isArray(request.projects)
  ) {
    throw new OrcaError("invalid", "deploy request needs a `projects` object", {
      hint: '{"projects": {"<project>": [...]}}',
    });
  }
  const specs: ServiceSpec[] = [];
  for (const [project, services] of Object.entries(request.projects)) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(project)) {
      throw new OrcaError("invalid", `invalid project name ${JSON.stringify(project)}`);
    }
    if (!Array.isArray(services)) throw new OrcaError("invalid", `projects.${project} must be a list of services`);
    const names = new Set<string>();
    services.forEach((s, i) => {
      const spec = readService(s, { file: "deploy request" }, project, ["projects", project, i], { api: true });
      if (names.has(spec.name)) throw new OrcaError("invalid", `service ${project}/${spec.name} is listed twice`);
      names.add(spec.name);
      specs.push(spec);
    });
  }
  return specs;
}

/** The most services one prepare request names. */
const MAX_PREPARED = 10_000;

/**
 * Checks what the leader asks a server to start ahead of a deploy (`POST /api/v1/cluster/prepare`): services at a
 * version, and how many replicas of each to run there. An error names the field.
 */
export function validatePrepare(
  body: unknown,
): { spec: ServiceSpec; version: number; updatedAt: number; here?: number; secrets?: string }[] {
  const services = (typeof body === "object" && body !== null ? body as Record<string, unknown> : {}).services;
  if (!Array.isArray(services)) throw new OrcaError("invalid", "a prepare request needs a `services` list");
  if (services.length > MAX_PREPARED) throw new OrcaError("invalid", `services: at most ${MAX_PREPARED}`);
  return services.map((s, i) => {
    const { spec, version, updatedAt, here, secrets } = (typeof s === "object" && s !== null ? s : {}) as Record<
      string,
      unknown
    >;
    const project = (spec as { project?: unknown } | undefined)?.project;
    if (typeof project !== "string" || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(project)) {
      throw new OrcaError("invalid", `services[${i}].spec.project must be a project name`);
    }
    const parsed = readService(spec, { file: "prepare request" }, project, ["services", i, "spec"], { api: true });
    const whole = (v: unknown, min: number, max: number) =>
      Number.isSafeInteger(v) && v as number >= min && v as number <= max;
    if (!whole(version, 1, Number.MAX_SAFE_INTEGER)) {
      throw new OrcaError("invalid", `services[${i}].version must be a whole number from 1`);
    }
    if (!whole(updatedAt, 0, Number.MAX_SAFE_INTEGER)) {
      throw new OrcaError("invalid", `services[${i}].updatedAt must be a time in ms`);
    }
    if (here !== undefined && !whole(here, 1, 1000)) {
      throw new OrcaError("invalid", `services[${i}].here must be 1-1000`);
    }
    if (secrets !== undefined && (typeof secrets !== "string" || !/^[0-9a-f]{12}$/.test(secrets))) {
      throw new OrcaError("invalid", `services[${i}].secrets must be 12 hex digits`);
    }
    return {
      spec: parsed,
      version: version as number,
      updatedAt: updatedAt as number,
      ...(here !== undefined && { here: here as number }),
      ...(secrets !== undefined && { secrets }),
    };
  });
}

/** What a node needs to run `specs`: their modules and files uploaded, a container runtime for container services. */
export function checkRunnable(
  specs: ServiceSpec[],
  store: { hasModule(hash: string): boolean; hasBlob(hash: string): boolean },
  hasContainers: boolean,
): void {
  for (const spec of specs) {
    if (spec.runtime === "container" && !hasContainers) {
      throw new OrcaError(
        "unsupported",
        `service ${keyOf(spec)} is a container service, and this node runs Wasm only`,
        {
          hint: "start the server where a Docker engine runs",
        },
      );
    }
    for (const [guestPath, mount] of Object.entries(spec.wasm.files)) {
      const missing = Object.values(mount.tree ?? {}).find((h) => !store.hasBlob(h));
      if (missing) {
        throw new OrcaError(
          "invalid",
          `a file of ${guestPath} for service ${keyOf(spec)} was not uploaded (${missing})`,
          {
            hint: "PUT /api/v1/blobs/<sha256> first (orca deploy does this for you)",
          },
        );
      }
    }
    if (spec.module_hash && !store.hasModule(spec.module_hash)) {
      throw new OrcaError("invalid", `module ${spec.module_hash} of service ${keyOf(spec)} was not uploaded`, {
        hint: "PUT /api/v1/modules/<sha256> first (orca deploy does this for you)",
      });
    }
  }
}

/**
 * What a deploy of `incoming` (the whole lists of `projects`) changes in `deployed`: services created or updated
 * (at their next version, made `at`), removed (of those projects, not listed) and unchanged (the same spec, unless
 * `failed` says it failed to start: then it starts again at a new version).
 */
export function diffDeploy(
  incoming: ServiceSpec[],
  projects: string[],
  deployed: ReadonlyMap<string, StoredService>,
  failed: (key: string) => boolean,
  at: number,
  /** The highest version of a service ever handed out (a canary rolled back, a service removed, keep theirs). */
  highest: (key: string) => number = (key) => deployed.get(key)?.version ?? 0,
): { summary: DeploySummary; changed: StoredService[] } {
  const summary: DeploySummary = { created: [], updated: [], removed: [], unchanged: [] };
  const changed: StoredService[] = [];
  for (const spec of incoming) {
    const key = keyOf(spec);
    const current = deployed.get(key);
    if (current && !failed(key) && sameSpec(current.spec, spec)) {
      summary.unchanged.push(key);
      continue;
    }
    (current ? summary.updated : summary.created).push(key);
    changed.push({ spec, version: Math.max(current?.version ?? 0, highest(key)) + 1, updatedAt: at });
  }
  const listed = new Set(incoming.map(keyOf));
  const named = new Set(projects);
  for (const [key, s] of deployed) if (named.has(s.spec.project) && !listed.has(key)) summary.removed.push(key);
  return { summary, changed };
}

/** Specs compare by canonical JSON (keys sorted), so key order never matters. */
export function sameSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The events a deploy publishes once applied: each service created, updated, removed, or started as a canary. */
export function deployEvents(
  id: number,
  summary: DeploySummary,
  changed: StoredService[],
): [string, Record<string, unknown>][] {
  const versionOf = (key: string) => changed.find((c) => keyOf(c.spec) === key)?.version;
  return [
    ...summary.created.map((key): [string, Record<string, unknown>] => [
      "orca.service.deployed",
      { service: key, deploy: id, version: versionOf(key) },
    ]),
    ...summary.updated.map((key): [string, Record<string, unknown>] => [
      "orca.service.updated",
      { service: key, deploy: id, version: versionOf(key) },
    ]),
    ...summary.removed.map((key): [string, Record<string, unknown>] => [
      "orca.service.removed",
      { service: key, deploy: id },
    ]),
    ...(summary.canary ?? []).map((key): [string, Record<string, unknown>] => {
      const rollout = changed.find((c) => keyOf(c.spec) === key)?.spec.rollout;
      const share = { canary_percent: rollout?.canary_percent, analysis_secs: rollout?.analysis_secs };
      return ["orca.rollout.started", { service: key, deploy: id, version: versionOf(key), ...share }];
    }),
  ];
}

export function describeSummary(s: DeploySummary): string {
  const counts = (["created", "updated", "removed", "unchanged"] as const).map((k) => `${s[k].length} ${k}`);
  return [...counts, ...(s.canary?.length ? [`${s.canary.length} canary`] : [])].join(", ");
}
