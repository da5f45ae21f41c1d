/**
 * Trigger strings (`http:/api/*`, `cron:0 9 * * *`, `queue:orders`,
 * `event:deploy.*`): syntax only. Dispatch lives in triggers/.
 */

import { type CronSchedule, parseCron } from "./cron.ts";
import { quote } from "./reader.ts";
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

/** The longest queue topic, event name or event pattern. */
export const MAX_TOPIC_LENGTH = 200;
/** The longest http route. */
export const MAX_ROUTE_LENGTH = 2048;
/** The longest trigger string of any type. */
export const MAX_TRIGGER_LENGTH = 4096;

const TOPIC = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const EVENT_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const EVENT_PATTERN = /^([A-Za-z0-9_-]+|\*|\*\*)(\.([A-Za-z0-9_-]+|\*|\*\*))*$/;

/** What is wrong with a queue topic name, or `undefined` when it is valid (trigger or API). */
export function topicError(name: string): string | undefined {
  if (name.length > MAX_TOPIC_LENGTH) {
    return `topic name is ${name.length} characters long, more than ${MAX_TOPIC_LENGTH}`;
  }
  if (!TOPIC.test(name)) return `invalid topic name ${quote(name)} (letters, digits, . _ -, not starting with . _ -)`;
  return undefined;
}

/** What is wrong with an event name (`orders.created`), or `undefined` when it is valid. */
export function eventNameError(name: string): string | undefined {
  if (name.length > MAX_TOPIC_LENGTH) {
    return `event name is ${name.length} characters long, more than ${MAX_TOPIC_LENGTH}`;
  }
  if (!EVENT_NAME.test(name)) {
    return `invalid event name ${quote(name)} (dotted words of letters, digits, _ and -, e.g. orders.created)`;
  }
  return undefined;
}

/** Whether an event name is Orca's own (`orca`, `orca.*`, in any letter case): the API must not publish those. */
export function isReservedEvent(name: string): boolean {
  return name.split(".")[0].toLowerCase() === "orca";
}

/** What is wrong with an event pattern (`deploy.*`, `orca.**`), or `undefined` when it is valid. */
export function eventPatternError(pattern: string): string | undefined {
  if (pattern.length > MAX_TOPIC_LENGTH) {
    return `event pattern is ${pattern.length} characters long, more than ${MAX_TOPIC_LENGTH}`;
  }
  if (!EVENT_PATTERN.test(pattern)) {
    const example = "`orders.created`, `deploy.*` or `orca.**`";
    return `event trigger needs a dotted pattern like ${example}, got ${quote(pattern)}`;
  }
  return undefined;
}

/** Parses a trigger string; returns an error message instead of throwing. */
export function parseTrigger(text: string): TriggerSpec | { error: string } {
  if (text.length > MAX_TRIGGER_LENGTH) {
    return { error: `trigger is ${text.length} characters long, more than ${MAX_TRIGGER_LENGTH}` };
  }
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
    case "queue": {
      const error = topicError(arg);
      return error ? { error: `queue trigger: ${error}` } : { type, topic: arg };
    }
    case "event": {
      const error = eventPatternError(arg);
      return error ? { error } : { type, pattern: arg };
    }
    default:
      return {
        error: `unknown trigger type ${quote(type, 20)}${didYouMean(type, triggerTypes)}; use one of ${
          triggerTypes.map((t) => `${t}:`).join(", ")
        }`,
      };
  }
}

/**
 * Parses `/a/:id/*` into segments, or returns what is wrong with it. Literal
 * segments are written as in a URL and kept decoded (`a%20b` is "a b"), as
 * the router compares them with a request's decoded path segments. A route no
 * request could match is refused: `.` and `..` segments (URLs resolve them,
 * `%2e` too, before routing), malformed percent-encoding, text that is not
 * valid Unicode, a query or fragment, control characters.
 */
export function parseRoute(route: string): RouteSegment[] | string {
  if (!route.startsWith("/")) return `http route must start with "/", got ${quote(route)}`;
  if (route.length > MAX_ROUTE_LENGTH) {
    return `http route is ${route.length} characters long, more than ${MAX_ROUTE_LENGTH}`;
  }
  const bad = (why: string) => `http route ${quote(route)}: ${why}`;
  if (!route.isWellFormed()) return bad("not valid Unicode (a lone surrogate)");
  if ([...route].some((c) => c < " " || c === "\x7f")) return bad("control characters cannot be matched");
  if (/[?#]/.test(route)) return bad('a route matches the path only: drop the "?" query or "#" fragment');
  const parts = route.split("/").slice(1);
  const segments: RouteSegment[] = [];
  const params = new Set<string>();
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === "*") {
      if (i !== parts.length - 1) return bad(`"*" may only end a route`);
      segments.push({ kind: "wildcard" });
    } else if (part.startsWith(":")) {
      if (!/^:[A-Za-z_][A-Za-z0-9_]*$/.test(part)) return bad(`bad parameter ${quote(part)}`);
      if (params.has(part)) return bad(`parameter ${quote(part)} appears twice`);
      params.add(part);
      segments.push({ kind: "param", name: part.slice(1) });
    } else if (part === "" && i === parts.length - 1) {
      // A trailing slash is not significant: "/a/" and "/a" are the same route.
    } else if (part === "" || part.includes("*")) {
      return bad(`empty segment or "*" inside a segment`);
    } else {
      const value = decodeSegment(part);
      if (value === undefined) return bad(`malformed percent-encoding in ${quote(part)} (write a "%" as %25)`);
      if (value === "." || value === "..") {
        return bad(`a ${quote(part)} segment never reaches a service: URLs resolve dot segments before routing`);
      }
      if (value.includes("*")) return bad(`"*" inside a segment`);
      segments.push({ kind: "literal", value });
    }
  }
  return segments;
}

function decodeSegment(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch (err) {
    if (err instanceof URIError) return undefined;
    throw err;
  }
}
