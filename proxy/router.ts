/**
 * The routing table: which service answers a request. A route is a host
 * (from `domain`) and/or a path pattern (from `http:` triggers). Routes with a
 * matching host win over host-less ones (as in nginx or Caddy); within each,
 * the most specific path pattern wins. Two services claiming the same host and
 * pattern is a conflict, reported at deploy time.
 */

import {
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_HEADER,
  parseTrigger,
  type RouteSegment,
  type ServiceSpec,
} from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { compareSpecificity, matchSegments, patternKey, splitPath } from "../triggers/mod.ts";

export interface Route {
  /** `project/name` of the service. */
  service: string;
  /** Lowercase host name, or undefined for any host. */
  host?: string;
  pattern: string;
  segments: RouteSegment[];
  /** The service's limits on what a request may send (`[service.limits]`). */
  limits?: { maxBody: number; maxHeader: number };
}

export interface Routed {
  route: Route;
  params: Record<string, string>;
  rest?: string;
}

/** The routes a service declares. */
export function routesOf(spec: ServiceSpec): Route[] {
  const service = `${spec.project}/${spec.name}`;
  const limits = {
    maxBody: spec.limits.max_body ?? DEFAULT_MAX_BODY,
    maxHeader: spec.limits.max_header ?? DEFAULT_MAX_HEADER,
  };
  const routes: Route[] = [];
  for (const t of spec.triggers) {
    const parsed = parseTrigger(t);
    if ("error" in parsed || parsed.type !== "http") continue;
    routes.push({ service, pattern: parsed.route, segments: parsed.segments, limits });
  }
  if (spec.domain) {
    routes.push({ service, host: spec.domain, pattern: "/*", segments: [{ kind: "wildcard" }], limits });
  }
  return routes;
}

export class RouteTable {
  readonly #byHost = new Map<string, Route[]>();
  readonly #anyHost: Route[] = [];
  readonly routes: readonly Route[];

  /** Builds a table; throws a `conflict` OrcaError naming both services. */
  constructor(routes: Route[]) {
    const seen = new Map<string, Route>();
    for (const route of routes) {
      const key = `${route.host ?? "*"} ${patternKey(route.segments)}`;
      const other = seen.get(key);
      if (other && other.service !== route.service) {
        const where = route.host ? `host ${route.host}, path ${route.pattern}` : `path ${route.pattern}`;
        throw new OrcaError("conflict", `route conflict: ${other.service} and ${route.service} both claim ${where}`, {
          hint: "give one of them a different route or domain, or remove it",
        });
      }
      if (other) continue;
      seen.set(key, route);
      if (route.host) {
        const list = this.#byHost.get(route.host) ?? [];
        list.push(route);
        this.#byHost.set(route.host, list);
      } else {
        this.#anyHost.push(route);
      }
    }
    const order = (a: Route, b: Route) => compareSpecificity(a.segments, b.segments);
    for (const list of this.#byHost.values()) list.sort(order);
    this.#anyHost.sort(order);
    this.routes = [...seen.values()];
  }

  /** The route for `host` (port ignored) and `pathname`; `null` when the path is badly encoded. */
  match(host: string, pathname: string): Routed | undefined | null {
    const parts = splitPath(pathname);
    if (!parts) return null;
    const hostname = host.replace(/:\d+$/, "").toLowerCase();
    for (const list of [this.#byHost.get(hostname), this.#anyHost]) {
      for (const route of list ?? []) {
        const m = matchSegments(route.segments, parts);
        if (m) return { route, ...m };
      }
    }
    return undefined;
  }
}
