import assert from "node:assert/strict";
import type { ServiceSpec } from "../config/mod.ts";
import { headerPairs, type HttpContext } from "../runtime/mod.ts";
import { AccessLog } from "./access_log.ts";
import { createProxy, type ProxyOptions } from "./proxy.ts";
import { routesOf, RouteTable } from "./router.ts";

const spec = (limits: ServiceSpec["limits"] = {}): ServiceSpec => ({
  project: "p",
  name: "web",
  runtime: "wasm",
  module: "x.wasm",
  volumes: [],
  triggers: [],
  replicas: 1,
  domain: "web.example",
  aliases: [],
  internal: false,
  env: {},
  resources: {},
  placement: { labels: {} },
  wasm: { allowed_hosts: [], files: {} },
  limits,
});

/** A proxy in front of a service that reads the whole body and says what it saw. */
function proxyOf(extra: Partial<ProxyOptions> = {}, limits: ServiceSpec["limits"] = {}) {
  const seen: HttpContext[] = [];
  const heard: [string, string][][] = [];
  const read: (readonly [string, string][])[] = [];
  const handler = createProxy({
    routes: () => new RouteTable(routesOf(spec(limits))),
    serve: async (_service, request, ctx) => {
      seen.push(ctx);
      heard.push([...request.headers]);
      read.push(headerPairs(request));
      const body = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array();
      return new Response(`got ${body.length}`);
    },
    ...extra,
  });
  return { handler, seen, heard, read };
}

const remote: Deno.NetAddr = { transport: "tcp", hostname: "10.0.0.7", port: 5555 };

Deno.test("proxy: an ACME challenge is answered on plain HTTP, before routes; other paths are redirected to HTTPS", async () => {
  const { handler } = proxyOf({
    challenge: (token) => token === "tok" ? "tok.answer" : undefined,
    redirectPort: (host) => host === "web.example" ? 8443 : undefined,
  });
  const challenge = await handler(new Request("http://web.example/.well-known/acme-challenge/tok"), remote);
  assert.equal(await challenge.text(), "tok.answer");
  const redirect = await handler(new Request("http://web.example/a/b?c=1"), remote);
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get("location"), "https://web.example:8443/a/b?c=1");
  // An unknown token is the service's to answer (it may run its own ACME client) - here redirected like any path.
  assert.equal((await handler(new Request("http://web.example/.well-known/acme-challenge/x"), remote)).status, 308);
});

Deno.test("proxy: the HTTPS listener tells the service https; a peer's forwarded proto is kept, a client's is not", async () => {
  const secure = proxyOf({ scheme: "https" });
  await secure.handler(new Request("https://web.example/", { headers: { "x-forwarded-proto": "http" } }), remote);
  assert.deepEqual(secure.seen[0].client, { address: "10.0.0.7", proto: "https", host: "web.example" });
  const peer = proxyOf({ forwardedHost: (r) => r.headers.get("x-test-peer") ?? undefined });
  const forwarded = new Request("http://10.0.0.2/", {
    headers: { "x-test-peer": "web.example", "x-forwarded-proto": "https", "x-forwarded-for": "1.2.3.4" },
  });
  await peer.handler(forwarded, remote);
  assert.deepEqual(peer.seen[0].client, { address: "1.2.3.4", proto: "https", host: "web.example" });
  const client = proxyOf();
  await client.handler(new Request("http://web.example/", { headers: { "x-forwarded-proto": "https" } }), remote);
  assert.equal(client.seen[0].client?.proto, "http");
});

Deno.test("proxy: limits: headers past max_header 431, a declared body past max_body 413, a streamed one cut at it", async () => {
  const { handler, seen, heard, read } = proxyOf({}, { max_body: 1000, max_header: 1024 });
  const big = await handler(new Request("http://web.example/", { headers: { "x-big": "a".repeat(2000) } }), remote);
  assert.equal(big.status, 431);
  const declared = new Request("http://web.example/", {
    method: "POST",
    body: new Uint8Array(1001),
    headers: { "content-length": "1001" },
  });
  assert.equal((await handler(declared, remote)).status, 413);
  assert.equal(seen.length, 0);
  const chunks = (n: number) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < n; i++) c.enqueue(new Uint8Array(300));
        c.close();
      },
    });
  const post = (n: number) =>
    new Request("http://web.example/", { method: "POST", body: chunks(n), duplex: "half" } as RequestInit);
  const over = await handler(post(4), remote);
  assert.equal(over.status, 413);
  assert.match(await over.text(), /request body too large/);
  const under = await handler(post(3), remote);
  assert.equal(await under.text(), "got 900");
  // The header fields the proxy read to count them are what a runtime reads of the request it is handed: the same.
  const small = await handler(
    new Request("http://web.example/", { headers: { "x-small": "b", "a-first": "c" } }),
    remote,
  );
  assert.equal(small.status, 200);
  assert.deepEqual(read.at(-1), heard.at(-1));
  assert.deepEqual(heard.at(-1), [["a-first", "c"], ["x-small", "b"]]);
});

Deno.test("proxy: the access log has a JSON line per answer, of one service or all, with bytes of streamed bodies", async () => {
  const access = new AccessLog(100);
  const handler = createProxy({
    routes: () => new RouteTable(routesOf(spec())),
    serve: () =>
      Promise.resolve(
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new Uint8Array(10));
              c.enqueue(new Uint8Array(5));
              c.close();
            },
          }),
        ),
      ),
    access,
  });
  await (await handler(new Request("http://web.example/a"), remote)).arrayBuffer();
  await (await handler(new Request("http://nowhere.example/b"), remote)).arrayBuffer();
  const lines = [];
  for await (const line of access.read(undefined)) lines.push(JSON.parse(line.text));
  assert.equal(lines.length, 2);
  assert.deepEqual(
    { ...lines[0], ms: 0 },
    {
      service: "p/web",
      method: "GET",
      host: "web.example",
      path: "/a",
      status: 200,
      ms: 0,
      bytes: 15,
      proto: "http",
      client: "10.0.0.7",
    },
  );
  assert.equal(lines[1].service, "-");
  assert.equal(lines[1].status, 404);
  const one = [];
  for await (const line of access.read("p/web")) one.push(line);
  assert.equal(one.length, 1);
  // A line goes to `orca logs --access` as JSON, as any log line does: time, stream and text.
  const sent = JSON.parse(JSON.stringify(one[0]));
  assert.deepEqual(Object.keys(sent).sort(), ["at", "stream", "text"]);
  assert.equal(sent.stream, "system");
  assert.equal(JSON.parse(sent.text).path, "/a");
  assert.ok(Math.abs(sent.at - Date.now()) < 60_000);
});
