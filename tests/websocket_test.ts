/**
 * WebSocket through the proxy to a container (a real Docker engine: busybox
 * with this machine's Deno and libraries mounted read-only, running a small
 * echo server): text and binary messages both ways, the subprotocol the
 * upstream chose, a close mid-stream with its code and reason; and a Wasm
 * service's clear 501. In a cluster, an upgrade at a server with no replica
 * is bridged to the proxy of a node that runs one.
 */

import assert from "node:assert/strict";
import { Engine } from "../runtime/mod.ts";
import { examplesDir, launchServer, orca, removeContainers, startServer, writeProject } from "./harness.ts";
import { eventually, orcaAt, startMember } from "./cluster_harness.ts";

const engine = new Engine();
const ready = await engine.ping() &&
  await engine.request("GET", "/images/orca-examples%2Fbusybox:1/json").then(() => true, () => false);
if (!ready) console.error("websocket_test: SKIPPED: no Docker engine or images (scripts/docker_engine.sh)");

const ECHO = `Deno.serve({ port: 8080, hostname: "0.0.0.0", onListen() {} }, (req) => {
  if (req.headers.get("upgrade") !== "websocket") return new Response("ok");
  const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  if (new URL(req.url).searchParams.has("refuse")) return new Response("no", { status: 403 });
  const { socket, response } = Deno.upgradeWebSocket(req, offered.includes("orca-echo") ? { protocol: "orca-echo" } : {});
  socket.onmessage = (e) => e.data === "close-me" ? socket.close(4001, "bye") : socket.send(e.data);
  return response;
});
`;

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(`websocket failed: ${(e as ErrorEvent).message}`));
  });
}

function nextMessage(ws: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => ws.onmessage = (e) => resolve(e.data));
}

/**
 * One session with the echo at `url`: the subprotocol it chose, `text` and `bytes` echoed, and its close mid-stream
 * (code and reason) heard by the client.
 */
async function echoSession(url: string, protocols: string[], text: string, bytes: Uint8Array): Promise<void> {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  await opened(ws);
  assert.equal(ws.protocol, "orca-echo");
  let reply = nextMessage(ws);
  ws.send(text);
  assert.equal(await reply, text);
  reply = nextMessage(ws);
  ws.send(bytes);
  assert.deepEqual(new Uint8Array(await reply as ArrayBuffer), bytes);
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  ws.send("close-me");
  const event = await closed;
  assert.deepEqual([event.code, event.reason], [4001, "bye"]);
}

Deno.test({
  name:
    "websocket: messages both ways through the proxy to a container, its subprotocol, a close mid-stream; Wasm: 501",
  ignore: !ready,
  async fn() {
    const server = await startServer();
    const dir = await writeProject({});
    const project = `w${crypto.randomUUID().slice(0, 6)}`;
    await echoProject(dir, project);
    try {
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      const url = server.httpUrl.replace(/^http/, "ws");
      await echoSession(`${url}/chat`, ["orca-echo", "other"], "hello", new Uint8Array([1, 2, 3, 250]));

      // A second connection after the first closed works as well (nothing of the first is left in the way).
      const again = new WebSocket(`${url}/chat`);
      await opened(again);
      const echoed = nextMessage(again);
      again.send("again");
      assert.equal(await echoed, "again");
      again.close();

      // An upstream that answers the upgrade with something else: a 502 naming it, and the replica stays routed.
      const refused = new WebSocket(`${url}/chat?refuse=1`);
      const failure = await opened(refused).then(() => "opened", (err) => String(err));
      assert.match(failure, /502/);
      const after = new WebSocket(`${url}/chat`);
      await opened(after);
      after.close();

      // Wasm services answer requests, not connections: an upgrade gets a clear 501.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(server.httpUrl).port) });
      const handshake = "GET /js/x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
      await conn.write(new TextEncoder().encode(handshake));
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      conn.close();
      const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
      assert.match(head, /^HTTP\/1\.1 501/);
      assert.match(head, /a Wasm service cannot take a WebSocket/);
    } finally {
      await orca(server, "rm", project).catch(() => {});
      await server.stop();
      await removeContainers(server.home);
    }
  },
});

/** The echo container and a Wasm route in `dir`'s services/<project>. */
async function echoProject(dir: string, project: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/echo.ts`, ECHO);
  const volumes = [`${Deno.execPath()}:/deno:ro`, "/lib:/lib:ro", "/lib64:/lib64:ro", `${dir}/echo.ts:/echo.ts:ro`];
  await Deno.mkdir(`${dir}/services/${project}`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/services/${project}/service.toml`,
    `[[service]]\nname = "echo"\nimage = "orca-examples/busybox:1"\nport = 8080\ntriggers = ["http:/chat"]\n` +
      `volumes = ${JSON.stringify(volumes)}\ncommand = ["/deno", "run", "-A", "/echo.ts"]\n` +
      `env = { DENO_DIR = "/tmp/deno", HOME = "/tmp", NO_COLOR = "1" }\n` +
      `[service.readiness]\npath = "/"\ninterval_secs = 1\n\n` +
      `[[service]]\nname = "edge"\nmodule = "${examplesDir}/services/hello-js/hello.wasm"\ntriggers = ["http:/js/*"]\n`,
  );
}

Deno.test({
  name: "websocket in a cluster: an upgrade at a server with no replica is bridged to the node that runs one",
  ignore: !ready,
  async fn() {
    const PORTS = { api: 18680, http: 18681 };
    const homes = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "orca-ws-cluster-" })));
    const server = await startMember("127.0.0.1", homes[0], ["--no-workloads", "--node-timeout-secs", "2"], PORTS);
    let worker: Awaited<ReturnType<typeof launchServer>> | undefined;
    try {
      const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
      const args = ["join", `127.0.0.1:${PORTS.api}`, "--token", token, "--listen", "127.0.0.2"];
      const ports = ["--api-port", String(PORTS.api), "--http-port", String(PORTS.http)];
      worker = await launchServer([...args, ...ports, "--home", homes[1], "--name", "ws-worker"], {
        group: true,
        timeoutMs: 60_000,
      });
      await eventually("the worker registered", async () => {
        const r = await orcaAt(server.apiUrl, token, "nodes", "--json");
        return r.code === 0 && (JSON.parse(r.stdout) as { role: string }[]).some((n) => n.role === "worker");
      });
      const dir = await writeProject({});
      await echoProject(dir, "chat");
      const r = await orcaAt(server.apiUrl, token, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      // The server runs no replica: its proxy bridges the upgrade to the worker's, which bridges it to the container.
      for (const ip of ["127.0.0.2", "127.0.0.1"]) {
        await eventually(`the echo answering through ${ip}`, async () => {
          const res = await fetch(`http://${ip}:${PORTS.http}/chat`, { signal: AbortSignal.timeout(5000) });
          return res.status === 200 && (await res.text()) === "ok";
        }, 60_000);
      }
      await echoSession(
        `ws://127.0.0.1:${PORTS.http}/chat`,
        ["orca-echo"],
        "through two proxies",
        new Uint8Array([0, 255, 7]),
      );
      // A Wasm service elsewhere: the worker's proxy refuses the upgrade (501), and the server says so.
      const wasm = new WebSocket(`ws://127.0.0.1:${PORTS.http}/js/x`);
      assert.match(await opened(wasm).then(() => "opened", (err) => String(err)), /502/);
      // Plain requests still go across.
      const plain = await fetch(`http://127.0.0.1:${PORTS.http}/js/x`);
      assert.equal(plain.status, 200);
      await plain.body?.cancel();
    } finally {
      await worker?.end("SIGKILL");
      await server.kill();
      await removeContainers(homes[1]).catch(() => {});
    }
  },
});
