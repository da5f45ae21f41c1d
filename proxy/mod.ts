/**
 * The proxy: the routing table built from services' domains and http
 * triggers, and the request handler in front of the runtimes.
 *
 * @module
 */

export { type Route, type Routed, routesOf, RouteTable } from "./router.ts";
export { createProxy, type ProxyOptions, type ServeService } from "./proxy.ts";
export { MAX_HOST_LENGTH, type ParsedHost, parseHost, requestTarget } from "./host.ts";
