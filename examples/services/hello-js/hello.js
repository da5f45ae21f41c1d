// An edge function in JavaScript: a wasi:http/incoming-handler component,
// built with componentize-js. Route parameters arrive as x-orca-param-* headers.
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  console.log(`${request.method} ${url.pathname}`); // guest stdout becomes the service's logs
  const name = request.headers.get("x-orca-param-name");
  if (name) {
    return new Response(`hello, ${name}!\n`, { headers: { "content-type": "text/plain" } });
  }
  const body = request.method === "POST" ? await request.text() : "";
  return Response.json({
    message: "hello from a JavaScript edge function",
    method: request.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    route: request.headers.get("x-orca-route"),
    body,
  });
}
