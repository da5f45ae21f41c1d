/**
 * Triggers: what makes a service run. The http trigger (route patterns and
 * matching) lives here; cron, queue and event dispatchers join it.
 *
 * @module
 */

export { compareSpecificity, matchSegments, patternKey, type RouteMatch, splitPath } from "./http.ts";
