import assert from "node:assert/strict";
import { endToEnd } from "../runtime/mod.ts";
import { FORWARD_HEADER, FORWARD_HOP_HEADER, FORWARD_HOST_HEADER, Forwarder } from "./forward.ts";

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
