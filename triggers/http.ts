/**
 * The http trigger: route patterns (`/a/b` exact, `/a/:id` params, `/a/*`
 * prefix) matched against request paths, and how specific each pattern is.
 */

import type { RouteSegment } from "../config/mod.ts";

export interface RouteMatch {
  params: Record<string, string>;
  /** What a trailing `*` matched, with a leading "/" ("" when nothing). */
  rest?: string;
}

/** Splits a URL path into decoded segments; `undefined` if badly encoded. */
export function splitPath(pathname: string): string[] | undefined {
  const trimmed = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  if (trimmed === "/") return [];
  try {
    return trimmed.slice(1).split("/").map(decodeURIComponent);
  } catch {
    return undefined; // malformed percent-encoding
  }
}

/** Matches decoded path segments against a pattern. */
export function matchSegments(pattern: readonly RouteSegment[], parts: readonly string[]): RouteMatch | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const seg = pattern[i];
    if (seg.kind === "wildcard") {
      const rest = parts.slice(i);
      return { params, rest: rest.length ? `/${rest.join("/")}` : "" };
    }
    if (i >= parts.length) return undefined;
    if (seg.kind === "literal" && seg.value !== parts[i]) return undefined;
    if (seg.kind === "param") params[seg.name] = parts[i];
  }
  return parts.length === pattern.length ? { params } : undefined;
}

const rank = { literal: 3, param: 2, end: 1.5, wildcard: 1 } as const;

/**
 * Orders patterns most specific first: segment by segment, a literal beats a
 * parameter, which beats the end of a pattern, which beats a wildcard.
 */
export function compareSpecificity(a: readonly RouteSegment[], b: readonly RouteSegment[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const ra = i < a.length ? rank[a[i].kind] : rank.end;
    const rb = i < b.length ? rank[b[i].kind] : rank.end;
    if (ra !== rb) return rb - ra;
    if (ra === rank.end) return 0;
  }
  return 0;
}

/** A key equal for patterns that match exactly the same paths. */
export function patternKey(pattern: readonly RouteSegment[]): string {
  return "/" +
    pattern.map((s) => s.kind === "literal" ? encodeURIComponent(s.value) : s.kind === "param" ? ":" : "*").join("/");
}
