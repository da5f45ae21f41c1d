/**
 * Trigger strings (`http:/api/*`, `cron:0 9 * * *`, `queue:orders`,
 * `event:deploy.*`): syntax only. Dispatch lives in triggers/.
 */

import { type CronSchedule, parseCron } from "./cron.ts";
import { didYouMean } from "./suggest.ts";

export type TriggerSpec =
  | { type: "http"; route: string; segments: RouteSegment[] }
  | { type: "cron"; schedule: CronSchedule }
  | { type: "queue"; topic: string }
  | { type: "event"; pattern: string };

/** One path segment of an http route: literal, `:param`, or trailing `*`. */
export type RouteSegment =
  | { kind: "literal"; value: string }
  | { kind: "param"; name: string }
  | { kind: "wildcard" };

export const triggerTypes = ["http", "cron", "queue", "event"] as const;

/** Parses a trigger string; returns an error message instead of throwing. */
export function parseTrigger(text: string): TriggerSpec | { error: string } {
  const colon = text.indexOf(":");
  const type = colon < 0 ? text : text.slice(0, colon);
  const arg = colon < 0 ? "" : text.slice(colon + 1).trim();
  switch (type) {
    case "http": {
      const segments = parseRoute(arg);
      return typeof segments === "string" ? { error: segments } : { type, route: arg, segments };
    }
    case "cron": {
      if (!arg) return { error: "cron trigger needs a schedule, e.g. `cron:0 9 * * *`" };
      const schedule = parseCron(arg);
      return "error" in schedule ? { error: `cron trigger: ${schedule.error}` } : { type, schedule };
    }
    case "queue":
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(arg)) {
        return { error: `queue trigger needs a topic name (letters, digits, . _ -), got ${JSON.stringify(arg)}` };
      }
      return { type, topic: arg };
    case "event":
      if (!/^([A-Za-z0-9_-]+|\*|\*\*)(\.([A-Za-z0-9_-]+|\*|\*\*))*$/.test(arg)) {
        const example = "`orders.created`, `deploy.*` or `orca.**`";
        return { error: `event trigger needs a dotted pattern like ${example}, got ${JSON.stringify(arg)}` };
      }
      return { type, pattern: arg };
    default:
      return {
        error: `unknown trigger type ${JSON.stringify(type)}${didYouMean(type, triggerTypes)}; use one of ${
          triggerTypes.map((t) => `${t}:`).join(", ")
        }`,
      };
  }
}

/** Parses `/a/:id/*` into segments, or returns what is wrong with it. */
export function parseRoute(route: string): RouteSegment[] | string {
  if (!route.startsWith("/")) return `http route must start with "/", got ${JSON.stringify(route)}`;
  const parts = route.split("/").slice(1);
  const segments: RouteSegment[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === "*") {
      if (i !== parts.length - 1) return `http route ${JSON.stringify(route)}: "*" may only end a route`;
      segments.push({ kind: "wildcard" });
    } else if (part.startsWith(":")) {
      if (!/^:[A-Za-z_][A-Za-z0-9_]*$/.test(part)) {
        return `http route ${JSON.stringify(route)}: bad parameter ${JSON.stringify(part)}`;
      }
      segments.push({ kind: "param", name: part.slice(1) });
    } else if (part === "" && i === parts.length - 1) {
      // A trailing slash is not significant: "/a/" and "/a" are the same route.
    } else if (part === "" || part.includes("*")) {
      return `http route ${JSON.stringify(route)}: empty segment or "*" inside a segment`;
    } else {
      segments.push({ kind: "literal", value: part });
    }
  }
  return segments;
}
