/** The baseline: the smallest Deno.serve hello, on the port given as the only argument. */
const port = Number(Deno.args[0] ?? 0);
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: (a) => console.log(`listening ${a.port}`) },
  () => new Response("hello from plain Deno.serve\n", { headers: { "content-type": "text/plain" } }),
);
await server.finished;
