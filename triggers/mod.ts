/**
 * Triggers: what makes a service run. http (route patterns and matching),
 * cron (firings in a time zone), queue (durable topics, retries, dead
 * letters) and event (dotted names, glob patterns, fan-out).
 *
 * @module
 */

export { compareSpecificity, matchSegments, patternKey, type RouteMatch, splitPath } from "./http.ts";
export { nextFire } from "./cron.ts";
export { matchEvent, validEventName } from "./pattern.ts";
export { defaultRetryPolicy, retryDelay, type RetryPolicy } from "./backoff.ts";
