/**
 * The floor for a proxy on Deno: the smallest reverse proxy made of Deno.serve and the proxy's own HTTP/1.1 client
 * (`runtime/h1.ts`: kept connections to the upstream, a short answer read whole and sent on), on the port given
 * first, to the upstream `host:port` given second. What any proxy built on Deno's HTTP server pays, with nothing of
 * Orca's routing, forwarding headers, limits, logs or metrics in it.
 */
import { UpstreamPool } from "../runtime/h1.ts";

const [port, upstream] = [Number(Deno.args[0] ?? 0), Deno.args[1]];
const pool = new UpstreamPool();
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: (a) => console.log(`listening ${a.port}`) },
  (request) => {
    const url = new URL(request.url);
    return pool.requestTo(upstream, {
      method: request.method,
      target: `${url.pathname}${url.search}`,
      headers: request.headers,
      timeoutMs: 60_000,
    });
  },
);
await server.finished;
