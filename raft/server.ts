/**
 * One Raft node as a process: a replicated key-value store on durable SQLite
 * storage (WAL, synchronous=FULL, written on a worker thread), its peers reached through the WebSocket
 * transport, and a small HTTP API for clients. Only the leader takes writes;
 * the others say 503 and name the leader (`x-raft-leader`), and the client
 * asks there. Any node serves reads: a follower asks the leader for the read
 * index and answers once it has applied through it (503 while it knows no
 * leader). Every request carries the cluster token.
 *
 *   PUT /kv/<key>   body: the value. `x-client-id` and `x-client-seq` make a write retryable: the same pair
 *                   applies once however often it is sent. 200 once applied; 504 when its outcome is unknown.
 *   GET /kv/<key>   a linearizable read (ReadIndex), on any node: 200 {"value": string | null}; 504 if not confirmed
 *                   in time.
 *   GET /status     this node's role, term, leader and write stats (fsyncs, entries written); with `?digest`,
 *                   a hash of its whole state (equal on nodes that applied the same entries).
 *   /raft           peers (raft/transport.ts).
 *
 * A storage error stops the process (exit code 74), as DESIGN.md asks.
 *
 *   deno run --allow-net --allow-read --allow-write raft/server.ts --id n1 --listen 127.0.0.1:7001 \
 *     --peers n2=127.0.0.2:7001,n3=127.0.0.3:7001 --data /var/lib/orca-raft/n1 --token "$TOKEN"
 */

import { parseArgs } from "node:util";
import { createHash, timingSafeEqual } from "node:crypto";
import { NotLeaderError, RaftDriver, TimeoutError } from "./driver.ts";
import { encodePut, KvMachine } from "./kv.ts";
import type { SessionOutcome } from "./session.ts";
import { _digest, raftPath, WebSocketTransport } from "./transport.ts";
import { WorkerLogStore } from "./worker_store.ts";

export interface ServerOptions {
  id: string;
  /** `host:port` to listen on, for clients and peers alike. */
  listen: string;
  /** The other voters: id to the address this node dials. */
  peers: Record<string, string>;
  /** Where the node's SQLite database lives. */
  dataDir: string;
  token: string;
  tickMs?: number;
  /** Entries applied between snapshots (default 100,000, as etcd's --snapshot-count). */
  snapshotEvery?: number;
  /** Called when storage fails, after the node stopped. */
  onFatal: (err: unknown) => void;
}

/** A driver of the key-value machine: a write's result is its session outcome. */
export type KvDriver = RaftDriver<SessionOutcome<string> | undefined>;

export interface RaftServer {
  driver: KvDriver;
  transport: WebSocketTransport;
  /** Stops serving, sending and storing. */
  shutdown(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RaftServer> {
  await Deno.mkdir(opts.dataDir, { recursive: true });
  const peers = Object.fromEntries(Object.entries(opts.peers).filter(([id]) => id !== opts.id));
  // The driver stops the node on any store error (it sees every write fail) and then calls onFatal.
  const store = new WorkerLogStore(`${opts.dataDir}/raft.db`);
  const transport = new WebSocketTransport({ id: opts.id, token: opts.token, peers });
  const machine = new KvMachine();
  const driver: KvDriver = new RaftDriver({
    id: opts.id,
    voters: [opts.id, ...Object.keys(peers)],
    store,
    transport,
    machine,
    onFatal: opts.onFatal,
    tickMs: opts.tickMs ?? 20,
    snapshotEvery: opts.snapshotEvery ?? 100_000,
  });
  const { hostname, port } = _splitAddr(opts.listen);
  const handler = kvHandler(driver, machine, transport, opts.token);
  const server = Deno.serve({ hostname, port, onListen() {} }, handler);
  return {
    driver,
    transport,
    async shutdown() {
      driver.stop();
      await transport.close();
      await server.shutdown();
      await store.close();
    },
  };
}

/** The client API (see the module doc), as a plain handler. */
export function kvHandler(
  driver: KvDriver,
  machine: KvMachine,
  transport: WebSocketTransport,
  token: string,
): (req: Request) => Promise<Response> {
  const tokenDigest = _digest(token);
  return async (req) => {
    const url = new URL(req.url);
    if (url.pathname === raftPath) return transport.handle(req);
    const presented = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1] ?? "";
    if (!timingSafeEqual(_digest(presented), tokenDigest)) return json(401, { error: "missing or wrong token" });
    if (url.pathname === "/status" && req.method === "GET") {
      const { node, stats } = driver;
      const digest = url.searchParams.has("digest")
        ? { digest: createHash("sha256").update(machine.kv.digest()).digest("hex") }
        : {};
      return json(200, { id: node.id, ...stats, commit: node.commit, transport: transport.stats, ...digest });
    }
    if (!url.pathname.startsWith("/kv/") || url.pathname.length === 4) return json(404, { error: "no such route" });
    const key = decodeURIComponent(url.pathname.slice(4));
    try {
      if (req.method === "PUT") {
        const value = await req.text();
        const client = req.headers.get("x-client-id") ?? undefined;
        const seq = Number(req.headers.get("x-client-seq") ?? NaN);
        if (client !== undefined && !(Number.isSafeInteger(seq) && seq > 0)) {
          return json(400, { error: "x-client-seq must be a positive integer with x-client-id" });
        }
        const outcome = await driver.propose(encodePut({ key, value }), client ? { client, seq } : undefined);
        return json(200, { status: outcome?.status });
      }
      if (req.method === "GET") {
        await driver.readBarrier();
        return json(200, { value: machine.kv.kv.get(key) ?? null });
      }
      return json(405, { error: "PUT or GET" });
    } catch (err) {
      if (err instanceof NotLeaderError) {
        const headers = err.leader !== undefined ? { "x-raft-leader": err.leader } : undefined;
        return json(503, { error: err.message, leader: err.leader ?? null }, headers);
      }
      if (err instanceof TimeoutError) return json(504, { error: err.message });
      throw err;
    }
  };
}

function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** "127.0.0.2:7001" as a hostname and a port. */
export function _splitAddr(addr: string): { hostname: string; port: number } {
  const at = addr.lastIndexOf(":");
  const port = Number(addr.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`Cannot parse address "${addr}": expected host:port`);
  }
  return { hostname: addr.slice(0, at), port };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      id: { type: "string" },
      listen: { type: "string" },
      peers: { type: "string", default: "" },
      data: { type: "string" },
      token: { type: "string" },
      "tick-ms": { type: "string", default: "20" },
      "snapshot-every": { type: "string", default: "100000" },
    },
  });
  const token = values.token ?? Deno.env.get("ORCA_RAFT_TOKEN");
  if (!values.id || !values.listen || !values.data || !token) {
    console.error("usage: server.ts --id ID --listen HOST:PORT --peers ID=HOST:PORT,... --data DIR --token TOKEN");
    Deno.exit(2);
  }
  const peers = Object.fromEntries(
    values.peers.split(",").filter(Boolean).map((p) => {
      const [id, addr] = p.split("=");
      return [id, addr];
    }),
  );
  const server = await startServer({
    id: values.id,
    listen: values.listen,
    peers,
    dataDir: values.data,
    token,
    tickMs: Number(values["tick-ms"]),
    snapshotEvery: Number(values["snapshot-every"]),
    onFatal(err) {
      console.error(`error: storage failed, stopping (${values.data}): ${err}`);
      Deno.exit(74);
    },
  });
  Deno.addSignalListener("SIGTERM", async () => {
    await server.shutdown();
    Deno.exit(0);
  });
  console.log(JSON.stringify({ ready: values.id, listen: values.listen }));
}
