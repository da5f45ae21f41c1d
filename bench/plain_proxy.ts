/**
 * The floor for a proxy on Deno: the smallest reverse proxy made of
 * Deno.serve and fetch (keep-alive to the upstream, the answer read whole and
 * sent on), on the port given first, to the upstream port given second. What
 * any proxy built on Deno's HTTP server and client pays, with nothing of
 * Orca's in it.
 */
const [port, upstream] = [Number(Deno.args[0] ?? 0), Number(Deno.args[1])];
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: (a) => console.log(`listening ${a.port}`) },
  async (request) => {
    const url = new URL(request.url);
    const res = await fetch(`http://127.0.0.1:${upstream}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
    });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
  },
);
await server.finished;
