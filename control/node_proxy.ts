/**
 * A node's two front doors, servers and workers alike: the plain HTTP proxy
 * (which also answers ACME challenges and redirects to HTTPS) and the HTTPS
 * one, both in front of the node's plane, logging to its access log.
 */

import { createProxy } from "../proxy/mod.ts";
import type { HttpContext } from "../runtime/mod.ts";
import type { NodeCertificates } from "./certificates.ts";
import type { Forwarder } from "./forward.ts";
import type { ControlPlane } from "./plane.ts";

export type ProxyHandler = (request: Request, remote?: Deno.NetAddr) => Promise<Response>;

export function nodeProxies(
  plane: ControlPlane,
  forwarder: Forwarder,
  certs: NodeCertificates,
  log: (line: string) => void,
): { plain: ProxyHandler; secure: ProxyHandler } {
  const common = {
    routes: () => plane.routes,
    access: plane.access,
    serve: (service: string, request: Request, ctx: HttpContext) => plane.serve(service, request, ctx),
    forwardedHost: (request: Request) => forwarder.forwardedHost(request),
    onError: (err: unknown, request: Request) =>
      log(`proxy: ${request.method} ${request.url}: ${(err as Error).message ?? err}`),
  };
  return {
    plain: createProxy({
      ...common,
      challenge: (token) => certs.challenge(token),
      redirectPort: (hostname) => certs.redirectPort(hostname),
    }),
    secure: createProxy({ ...common, scheme: "https" }),
  };
}
