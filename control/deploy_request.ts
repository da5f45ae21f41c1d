/** What a deploy request is, and how specs are compared: validation outside the state machine. */

import { readService, type ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import type { DeploySummary } from "./store.ts";

export interface DeployRequest {
  /** Project name -> its complete list of services. */
  projects: Record<string, unknown[]>;
}

export function keyOf(spec: ServiceSpec): string {
  return `${spec.project}/${spec.name}`;
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

export function describeSummary(s: DeploySummary): string {
  return (["created", "updated", "removed", "unchanged"] as const).map((k) => `${s[k].length} ${k}`).join(", ");
}
