/**
 * The API and the proxy as an attacker sees them: malformed Host headers,
 * bodies past their limits (announced or streamed), reserved event names,
 * malformed query parameters, and the data dir's file modes. Each attack is
 * answered with a clear 4xx and the server keeps serving.
 */

import assert from "node:assert/strict";
import { type ServerProcess, startServer } from "./harness.ts";

const LIMIT_MESSAGE = 4096;
const LIMIT_MODULE = 1024 * 1024;

/** Sends `head` (and `body` pieces) over a raw socket; returns the status line's code and the response text. */
async function raw(url: string, head: string, body?: AsyncIterable<Uint8Array>) {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const encoder = new TextEncoder();
  let sent = 0;
  let sentWhenAnswered = -1;
  const reading = (async () => {
    let text = "";
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (sentWhenAnswered < 0) sentWhenAnswered = sent;
        text += new TextDecoder().decode(buf.subarray(0, n));
        if (/\r\n\r\n/.test(text) && /content-length: (\d+)/i.test(text)) {
          const length = Number(/content-length: (\d+)/i.exec(text)![1]);
          if (text.length - text.indexOf("\r\n\r\n") - 4 >= length) break;
        }
      }
    } catch {
      // reset by the server after it answered: what was read is the answer
    }
    return text;
  })();
  try {
    await conn.write(encoder.encode(head));
    if (body) {
      for await (const piece of body) {
        if (sentWhenAnswered >= 0) break;
        await conn.write(piece);
        sent += piece.length;
      }
    }
  } catch {
    // the server closed the connection on a body it refused
  }
  const text = await reading;
  conn.close();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, sent, sentWhenAnswered };
}

const get = (server: ServerProcess, url: string, host: string, path: string) =>
  raw(
    url,
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${server.token}\r\nConnection: close\r\n\r\n`,
  );

async function api(server: ServerProcess, path: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${server.token}`);
  const res = await fetch(`${server.apiUrl}/api/v1${path}`, { ...init, headers });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

Deno.test("hostile input to the API and the proxy gets a clear 4xx; the server keeps serving", async (t) => {
  const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
  await Deno.chmod(home, 0o755);
  const oldMask = Deno.umask(0o000);
  let server: ServerProcess;
  try {
    server = await startServer(home, {}, [
      "--max-message-bytes",
      String(LIMIT_MESSAGE),
      "--max-module-bytes",
      String(LIMIT_MODULE),
    ]);
  } finally {
    Deno.umask(oldMask);
  }
  try {
    await t.step("Host cannot rewrite the routed path; malformed Host is 400 without a trace", async () => {
      const rewritten = await get(server, server.httpUrl, "127.0.0.1/echo", "/zzz");
      assert.equal(rewritten.status, 400, rewritten.text);
      assert.match(rewritten.text, /malformed Host header/);
      for (const host of ["127.0.0.1:99999", "127.0.0.1:abc", "a b", "user@127.0.0.1", "127.0.0.1?x", "x#y", "[zz]"]) {
        const r = await get(server, server.httpUrl, host, "/zzz");
        assert.equal(r.status, 400, `${host}: ${r.text}`);
        assert.doesNotMatch(r.text, /at .*\.ts:\d+/);
      }
      for (const host of ["127.0.0.1", "127.0.0.1:8080", "Example.COM.", "[::1]:80", "localhost"]) {
        const r = await get(server, server.httpUrl, host, "/zzz");
        assert.equal(r.status, 404, `${host}: ${r.text}`);
        assert.match(r.text, /"path":"\/zzz"/);
      }
      const viaApi = await get(server, server.apiUrl, "127.0.0.1/api/v1/health", "/x");
      assert.equal(viaApi.status, 400, viaApi.text);
      assert.equal((await get(server, server.apiUrl, "127.0.0.1", "/api/v1/health")).status, 200);
    });

    await t.step("a chunked module past the limit is refused while it streams, not after", async () => {
      const hash = "0".repeat(64);
      const piece = new Uint8Array(64 * 1024);
      const total = 64 * 1024 * 1024;
      async function* chunks() {
        for (let sent = 0; sent < total; sent += piece.length) {
          yield new TextEncoder().encode(`${piece.length.toString(16)}\r\n`);
          yield piece;
          yield new TextEncoder().encode("\r\n");
        }
        yield new TextEncoder().encode("0\r\n\r\n");
      }
      const r = await raw(
        server.apiUrl,
        `PUT /api/v1/modules/${hash} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${server.token}\r\n` +
          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        chunks(),
      );
      assert.equal(r.status, 413, r.text);
      assert.match(r.text, /larger than 1048576 bytes/);
      // Answered once the limit was crossed (plus what socket buffers hold), long before the 64 MiB were sent.
      assert.ok(r.sentWhenAnswered >= 0 && r.sentWhenAnswered < 24 * 1024 * 1024, `answered after ${r.sent} bytes`);
    });

    await t.step("announced sizes past a limit: 413 at once", async () => {
      const big = (n: number) => new Uint8Array(n);
      const module = await api(server, `/modules/${"0".repeat(64)}`, { method: "PUT", body: big(LIMIT_MODULE + 1) });
      assert.equal(module.status, 413);
      const deploy = await api(server, "/deploy", { method: "POST", body: big(9 * 1024 * 1024) });
      assert.equal(deploy.status, 413);
      const message = await api(server, "/queues/orders", { method: "POST", body: big(LIMIT_MESSAGE + 1) });
      assert.equal(message.status, 413);
      assert.equal(JSON.parse(message.body).error.code, "too_large");
      const event = await api(server, "/events/orders.created", { method: "POST", body: big(LIMIT_MESSAGE + 1) });
      assert.equal(event.status, 413);
      assert.equal((await api(server, "/queues/orders", { method: "POST", body: big(LIMIT_MESSAGE) })).status, 201);
      assert.equal((await api(server, "/events/orders.created", { method: "POST", body: "{}" })).status, 201);
    });

    await t.step("Orca's own event names are refused in any letter case", async () => {
      for (const name of ["orca", "orca.service.deployed", "ORCA.service.deployed", "Orca", "oRcA.x"]) {
        const r = await api(server, `/events/${name}`, { method: "POST", body: "{}" });
        assert.equal(r.status, 400, name);
        assert.match(r.body, /reserved/);
      }
      assert.equal((await api(server, "/events/orcas.x", { method: "POST", body: "{}" })).status, 201);
      const long = await api(server, `/events/${"a".repeat(201)}`, { method: "POST", body: "{}" });
      assert.equal(long.status, 400);
    });

    await t.step("malformed query parameters: 400, never 500 or everything", async () => {
      for (const limit of ["abc", "1.5", "1e400", "-1", "", "0", "99999999999", " 5"]) {
        const r = await api(server, `/deploys?limit=${encodeURIComponent(limit)}`);
        assert.equal(r.status, 400, `limit=${limit}: ${r.body}`);
        assert.match(JSON.parse(r.body).error.message, /limit must be a whole number/);
        assert.equal((await api(server, `/queues/dead?limit=${encodeURIComponent(limit)}`)).status, 400);
      }
      assert.equal((await api(server, "/deploys?limit=5")).status, 200);
    });

    await t.step("the bearer scheme is case-insensitive; other schemes are refused", async () => {
      for (const scheme of ["bearer", "BEARER", "Bearer"]) {
        assert.equal(
          (await api(server, "/health", { headers: { authorization: `${scheme} ${server.token}` } })).status,
          200,
        );
      }
      assert.equal((await api(server, "/health", { headers: { authorization: `Basic ${server.token}` } })).status, 401);
    });

    await t.step("a deploy request whose projects is a list: 400", async () => {
      const r = await api(server, "/deploy", { method: "POST", body: '{"projects":[]}' });
      assert.equal(r.status, 400);
      assert.match(r.body, /needs a `projects` object/);
    });

    await t.step("the data dir's files are private whatever the umask; an open folder is warned about", async () => {
      const modes: Record<string, number> = {};
      for await (const entry of Deno.readDir(home)) {
        modes[entry.name] = (await Deno.stat(`${home}/${entry.name}`)).mode! & 0o777;
      }
      for (const name of ["cluster.token", "orca.db", "orca.db-wal", "orca.db-shm", "node.id"]) {
        assert.equal(modes[name], 0o600, `${name}: ${modes[name]?.toString(8)}`);
      }
      for (const [name, mode] of Object.entries(modes)) assert.equal(mode & 0o077, 0, `${name} is open to others`);
      assert.match(server.output(), /warning: the data dir .* is open to other users \(mode 755\)/);
    });

    await t.step("cluster endpoints: token, ids, addresses and membership checked", async () => {
      const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
        api(server, path, { method: "POST", body: JSON.stringify(body), headers });
      assert.equal(
        (await post("/cluster/join", { id: "n9", address: "127.0.0.9:6880" }, { authorization: "Bearer nope" }))
          .status,
        401,
      );
      for (const id of ["", "../x", "a/b", "x".repeat(65), 42, null]) {
        const r = await post("/cluster/join", { id, address: "127.0.0.9:6880" });
        assert.equal(r.status, 400, `id ${JSON.stringify(id)}: ${r.body}`);
      }
      for (const address of ["x", "127.0.0.9", "127.0.0.9:0", "127.0.0.9:99999", "a/b:1", "u@h:1", 7]) {
        const r = await post("/cluster/join", { id: "n9", address });
        assert.equal(r.status, 400, `address ${JSON.stringify(address)}: ${r.body}`);
      }
      assert.equal((await post("/cluster/join", "not an object")).status, 400);
      const huge = { id: "n9", address: "127.0.0.9:6880", pad: "x".repeat(70 * 1024) };
      assert.equal((await post("/cluster/join", huge)).status, 413);
      assert.equal((await post("/cluster/events/orca.x", { pad: "x".repeat(70 * 1024) })).status, 413);
      const me = (await Deno.readTextFile(`${home}/node.id`)).trim();
      const again = await post("/cluster/join", { id: me, address: "127.0.0.9:6880" });
      assert.equal(again.status, 409);
      assert.match(again.body, /already a member .*orca cluster remove/);
      assert.equal((await post("/cluster/promote", { id: "nobody" })).status, 404);
      // A server's record (address, labels, capacity, GPUs): only a registered one, with facts that check out.
      const put = (id: string, body: unknown, headers: Record<string, string> = {}) =>
        api(server, `/cluster/members/${id}`, { method: "PUT", body: JSON.stringify(body), headers });
      const record = {
        address: "127.0.0.1:6880",
        labels: { zone: "z1" },
        capacity: { memory: 1, cpuMillis: 1 },
        gpus: [],
      };
      assert.equal((await put(me, record, { authorization: "Bearer nope" })).status, 401);
      assert.equal((await put("nobody", record)).status, 404);
      for (const bad of [{ ...record, labels: { "a b": "c" } }, { ...record, capacity: 7 }, { ...record, gpus: [1] }]) {
        const r = await put(me, bad);
        assert.equal(r.status, 400, r.body);
      }
      assert.equal((await put(me, { ...record, address: "nowhere" })).status, 400);
      assert.equal((await put(me, { ...record, pad: "x".repeat(70 * 1024) })).status, 413);
      assert.equal((await api(server, "/cluster/members/nobody", { method: "DELETE" })).status, 404);
      const last = await api(server, `/cluster/members/${me}`, { method: "DELETE" });
      assert.equal(last.status, 400);
      assert.match(last.body, /only voter/);
      // The peers' endpoint: no socket without the token and a known peer id.
      const peer = await fetch(`${server.apiUrl}/api/v1/raft`, { headers: { "x-raft-from": me } });
      assert.equal(peer.status, 401);
      await peer.body?.cancel();
      // Orca's own events from other servers: only orca.* names, JSON object data, with the token.
      const raised = await post("/cluster/events/orca.instance.crashed", { service: "p/s", error: "x" });
      assert.equal(raised.status, 201, raised.body);
      assert.equal((await post("/cluster/events/orders.created", {})).status, 400);
      assert.equal((await post("/cluster/events/orca.x", [1, 2])).status, 400);
      assert.equal((await post("/cluster/events/orca.x", {}, { authorization: "Bearer nope" })).status, 401);
      const stale = await api(server, "/services?stale=1");
      assert.equal(stale.status, 200);
      const nodes = JSON.parse((await api(server, "/nodes")).body).nodes;
      assert.equal(nodes.length, 1);
      assert.equal(nodes[0].role, "voter");
      assert.equal(nodes[0].leader, true);
    });

    await t.step("placement endpoints: prepare, reports and drain check every field and the token", async () => {
      const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
        api(server, path, { method: "POST", body: JSON.stringify(body), headers });
      const me = JSON.parse((await api(server, "/nodes")).body).nodes[0].id;
      const prepares: [unknown, RegExp][] = [
        [{}, /needs a `services` list/],
        [{ services: [{ spec: { project: "../x" } }] }, /services\[0\]\.spec\.project/],
        [{ services: [{ spec: { project: "p", name: "s", module: "/etc/passwd" }, version: 1, updatedAt: 1 }] }, /./],
        [{ services: Array(10_001).fill({}) }, /at most 10000/],
        [{
          services: [{
            spec: { project: "p", name: "s", module: "m.wasm", module_hash: "a".repeat(64) },
            version: 1,
            updatedAt: 1,
            secrets: "../../etc/passwd",
          }],
        }, /services\[0\]\.secrets must be 12 hex digits/],
      ];
      for (const [body, message] of prepares) {
        const r = await post("/cluster/prepare", body);
        assert.equal(r.status, 400, r.body);
        assert.match(r.body, message);
      }
      assert.equal((await post("/cluster/prepare", { services: [] }, { authorization: "Bearer nope" })).status, 401);
      assert.equal((await post("/cluster/prepare", { services: [] })).status, 200, "nothing to start is fine");
      const report = await post(`/cluster/nodes/${me}/replicas`, {
        states: [{ service: "p/s", version: "1" }],
        gone: [],
      });
      assert.equal(report.status, 400);
      assert.match(report.body, /states\[0\]\.version/);
      assert.equal((await post("/cluster/nodes/nobody/drain", {})).status, 404);
      assert.equal((await post("/cluster/nodes/a%2F..%2Fb/drain", {})).status, 400);
      const plan = await api(server, "/deploy?plan=1", { method: "POST", body: JSON.stringify({ projects: [] }) });
      assert.equal(plan.status, 400, plan.body);
      // A job run here (what the leader asks of the node that runs a service): fields checked, unknown service 404.
      const job = (body: unknown) => post("/services/p/nothing/jobs", body);
      assert.equal((await job({ env: { ORCA_TRIGGER: "cron" }, stdin: "" })).status, 404);
      for (const bad of [{ env: [], stdin: "" }, { env: { "bad key": "x" }, stdin: "" }, { env: {}, stdin: 1 }]) {
        const r = await job(bad);
        assert.equal(r.status, 400, r.body);
      }
      assert.equal((await post("/services/p/nothing/jobs", {}, { authorization: "Bearer nope" })).status, 401);
      // Past their limit (8 MiB, as a deploy): 413, whatever the endpoint.
      const huge = { services: [], pad: "x".repeat(9 << 20) };
      assert.equal((await post("/cluster/prepare", huge)).status, 413);
      assert.equal((await post(`/cluster/nodes/${me}/replicas`, huge)).status, 413);
      // Workers' socket: the token first, a WebSocket only, and a hello that names a worker properly.
      const noToken = await fetch(`${server.apiUrl}/api/v1/agent`);
      assert.equal(noToken.status, 401);
      await noToken.body?.cancel();
      const notSocket = await api(server, "/agent");
      assert.equal(notSocket.status, 400, notSocket.body);
      for (const hello of [{ type: "ping" }, { type: "hello", id: "../x", address: "127.0.0.1:1", facts: {} }]) {
        const ws = new WebSocket(`${server.apiUrl.replace("http", "ws")}/api/v1/agent`, {
          headers: { authorization: `Bearer ${server.token}` },
        });
        const refused = await new Promise<string>((resolve) => {
          let said = "";
          ws.onopen = () => ws.send(JSON.stringify(hello));
          ws.onmessage = (e) => said = String(e.data);
          ws.onclose = () => resolve(said);
        });
        assert.match(refused, /"type":"error"/, JSON.stringify(hello));
      }
      assert.equal(JSON.parse((await api(server, "/nodes")).body).nodes.length, 1, "no worker was registered");
      // The lone server drained and back: nothing to move, and it takes deploys again.
      assert.equal((await post(`/cluster/nodes/${me}/drain`, {})).status, 200);
      assert.match((await api(server, "/nodes")).body, /"drain":true/);
      assert.equal((await post(`/cluster/nodes/${me}/undrain`, {})).status, 200);
    });

    const alive = await api(server, "/health");
    assert.equal(alive.status, 200);
  } finally {
    await server.stop();
  }
});
