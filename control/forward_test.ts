import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { endToEnd, passOn } from "../runtime/mod.ts";
import { FORWARD_HEADER, FORWARD_HOP_HEADER, FORWARD_HOST_HEADER, Forwarder } from "./forward.ts";

Deno.test("passOn: a gzip answer arrives decoded and says so; a slow body is not cut by the head's timeout", async () => {
  const text = "hello ".repeat(100);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/slow") {
      const body = new ReadableStream({
        async start(c) {
          c.enqueue(new TextEncoder().encode("a"));
          await new Promise((r) => setTimeout(r, 400));
          c.enqueue(new TextEncoder().encode("b"));
          c.close();
        },
      });
      return new Response(body);
    }
    return new Response(new Uint8Array(gzipSync(new TextEncoder().encode(text))), {
      headers: { "content-encoding": "gzip", connection: "x-secret", "x-secret": "1" },
    });
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const res = await passOn(`${base}/`, { headers: { "accept-encoding": "gzip" } }, 5_000);
    assert.equal(res.headers.get("content-encoding"), null);
    assert.equal(res.headers.get("x-secret"), null, "headers that Connection names stay on that connection");
    assert.equal(await res.text(), text);
    const slow = await passOn(`${base}/slow`, {}, 200);
    assert.equal(await slow.text(), "ab", "the timeout is for the head only");
  } finally {
    await server.shutdown();
  }
});

Deno.test("the forwarding credential: only the cluster's; forged headers are stripped; hops are counted", () => {
  const forwarder = new Forwarder({ credential: "c".repeat(64), proxyOf: () => undefined });
  const request = (headers: Record<string, string>) => new Request("http://x/p", { headers });
  const forged = request({ [FORWARD_HEADER]: "d".repeat(64), [FORWARD_HOST_HEADER]: "evil", host: "real" });
  assert.equal(forwarder.isForwarded(forged), false);
  assert.equal(forwarder.forwardedHost(forged), undefined);
  assert.equal(forwarder.hops(forged), 0);
  const stripped = forwarder.strip(forged);
  assert.equal(stripped.headers.get(FORWARD_HEADER), null);
  assert.equal(stripped.headers.get(FORWARD_HOST_HEADER), null);
  assert.equal(stripped.headers.get("host"), "real");
  const real = request({ [FORWARD_HEADER]: "c".repeat(64), [FORWARD_HOST_HEADER]: "app.example", host: "10.0.0.2:80" });
  assert.equal(forwarder.hops(real), 1);
  assert.equal(forwarder.strip(real).headers.get("host"), "app.example", "the service sees the client's Host");
  const again = request({ [FORWARD_HEADER]: "c".repeat(64), [FORWARD_HOP_HEADER]: "2" });
  assert.equal(forwarder.hops(again), 2);
  assert.equal(endToEnd(new Headers({ connection: "keep-alive, x-a", "x-a": "1", "x-b": "2" })).get("x-a"), null);
});
