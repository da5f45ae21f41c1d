import assert from "node:assert/strict";
import { RaftDriver } from "./driver.ts";
import { KvMachine } from "./kv.ts";
import { MemoryLogStore } from "./memory_store.ts";
import { _splitAddr, type KvDriver, kvHandler } from "./server.ts";
import { WebSocketTransport } from "./transport.ts";
import { DatabaseSync } from "node:sqlite";
import { ProcessCluster } from "./process_cluster.ts";

/** A node of its own (no peers: it leads at once) behind the client API, called without a socket. */
async function singleNode() {
  const transport = new WebSocketTransport({ id: "n1", token: "secret", peers: {} });
  const machine = new KvMachine();
  const driver: KvDriver = new RaftDriver({
    id: "n1",
    voters: ["n1"],
    store: new MemoryLogStore(),
    transport,
    machine,
    onFatal: (err) => {
      throw err;
    },
    tickMs: 5,
  });
  while (driver.node.role !== "leader") await new Promise((r) => setTimeout(r, 5));
  const handle = kvHandler(driver, machine, transport, "secret");
  const call = async (method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}) => {
    const res = await handle(
      new Request(`http://node${path}`, {
        method,
        body: init.body,
        headers: { authorization: "Bearer secret", ...init.headers },
      }),
    );
    return { status: res.status, body: await res.json(), leader: res.headers.get("x-raft-leader") };
  };
  return { driver, transport, call };
}

Deno.test("the client API writes once per session, reads back, and refuses what it should", async () => {
  const { driver, transport, call } = await singleNode();
  try {
    const session = { "x-client-id": "c1", "x-client-seq": "1" };
    assert.deepEqual((await call("PUT", "/kv/a%2Fb", { body: "1", headers: session })).body, { status: "applied" });
    assert.deepEqual((await call("PUT", "/kv/a%2Fb", { body: "2", headers: session })).body, { status: "duplicate" });
    assert.deepEqual((await call("GET", "/kv/a%2Fb")).body, { value: "1" }, "the retry did not apply again");
    assert.deepEqual((await call("GET", "/kv/none")).body, { value: null });
    const status = await call("GET", "/status?digest");
    assert.equal(status.body.role, "leader");
    assert.ok(status.body.fsyncs > 0 && typeof status.body.digest === "string");
    assert.equal((await call("GET", "/kv/a", { headers: { authorization: "Bearer guess" } })).status, 401);
    assert.equal((await call("PUT", "/kv/a", { body: "x", headers: { "x-client-id": "c1" } })).status, 400);
    assert.equal((await call("GET", "/nope")).status, 404);
    assert.equal((await call("DELETE", "/kv/a")).status, 405);
    driver.stop();
    assert.equal((await call("PUT", "/kv/a", { body: "x" })).status, 503);
  } finally {
    driver.stop();
    await transport.close();
  }
});

Deno.test("addresses parse as host and port, or are refused with the reason", () => {
  assert.deepEqual(_splitAddr("127.0.0.2:7001"), { hostname: "127.0.0.2", port: 7001 });
  for (const bad of ["127.0.0.1", ":80", "host:http", "host:70000"]) assert.throws(() => _splitAddr(bad), /host:port/);
});

Deno.test({
  name: "a server whose storage fails exits (code 74) instead of answering",
  sanitizeResources: false, // fetch keeps its connection to the server pooled past the test
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "orca-raft-server-" });
    const cluster = await ProcessCluster.start({ size: 1, dir, token: "secret" });
    try {
      const deadline = () => performance.now() + 5000;
      assert.ok((await cluster.client.put("a", "1", deadline())).ok);
      // The database changes under the node so that its next write fails, as a failing disk would make it.
      const db = new DatabaseSync(`${dir}/n1/raft.db`);
      db.exec("DROP TABLE raft_entries");
      db.close();
      const put = cluster.client.put("a", "2", performance.now() + 2000);
      const status = await cluster.exited("n1");
      assert.equal(status.code, 74);
      assert.equal((await put).ok, false, "the write was not acknowledged");
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
