import assert from "node:assert/strict";
import type { Message } from "./messages.ts";
import { Pieces, raftPath, WebSocketTransport, type WebSocketTransportOptions } from "./transport.ts";

/** A node's HTTP server whose raft path is served by whatever transport is plugged in later. */
function serve(port = 0) {
  const box: { transport?: WebSocketTransport } = {};
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    if (new URL(req.url).pathname === raftPath && box.transport) return box.transport.handle(req);
    return new Response("not found", { status: 404 });
  });
  return { box, server, addr: `127.0.0.1:${server.addr.port}` };
}

function node(id: string, peers: Record<string, string>, box: { transport?: WebSocketTransport }, extra = {}) {
  const opts: WebSocketTransportOptions = { id, token: "secret", peers, minBackoffMs: 10, maxBackoffMs: 50, ...extra };
  const t = new WebSocketTransport(opts);
  const got: Message[] = [];
  t.onMessage((from, m) => {
    assert.equal(from, m.from);
    got.push(m);
  });
  box.transport = t;
  return { t, got };
}

/** Two nodes, n1 and n2, each with its server, that know each other. */
function pair(extra1 = {}, extra2 = {}) {
  const a = serve();
  const b = serve();
  const peers = { n1: a.addr, n2: b.addr };
  return { a, b, peers, n1: node("n1", peers, a.box, extra1), n2: node("n2", peers, b.box, extra2) };
}

async function closeAll(transports: WebSocketTransport[], servers: Deno.HttpServer[]): Promise<void> {
  for (const t of transports) await t.close();
  for (const s of servers) await s.shutdown();
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const snapshotMessage = (to: string): Message => ({
  type: "snapshot",
  from: "n1",
  to,
  term: 2,
  snapshot: { index: 7, term: 2, config: { voters: ["n1", "n2"], learners: [] }, data: new Uint8Array([0, 1, 255]) },
});

Deno.test("WebSocketTransport carries every kind of message, in order, and batches a Ready into one frame", async () => {
  const { a, b, n1, n2 } = pair();
  try {
    const sent: Message[] = [
      { type: "vote", from: "n1", to: "n2", term: 3, lastIndex: 4, lastTerm: 2, transfer: true },
      {
        type: "append",
        from: "n1",
        to: "n2",
        term: 3,
        prevIndex: 4,
        prevTerm: 2,
        commit: 4,
        round: 1,
        entries: [{ index: 5, term: 3, kind: "normal", data: new Uint8Array([1, 2]), client: "c1", seq: 9 }],
      },
      snapshotMessage("n2"),
    ];
    for (const m of sent) n1.t.send("n2", m);
    await until("n2 to get them", () => n2.got.length === 3);
    assert.deepEqual(n2.got, sent);
    assert.equal(n1.t.stats.framesSent, 1, "three messages sent together go in one frame");
    n2.t.send("n1", { type: "append-response", from: "n2", to: "n1", term: 3, success: true, index: 5 });
    await until("n1 to get the answer", () => n1.got.length === 1);
  } finally {
    await closeAll([n1.t, n2.t], [a.server, b.server]);
  }
});

Deno.test("WebSocketTransport refuses a peer without the cluster token, or with an unknown id", async () => {
  const a = serve();
  const b = serve();
  const peers = { n1: a.addr, n2: b.addr };
  const good = node("n2", peers, b.box);
  const intruder = node("n1", peers, a.box, { token: "guess" });
  try {
    for (let i = 0; i < 20; i++) intruder.t.send("n2", { type: "timeout-now", from: "n1", to: "n2", term: 99 });
    await until("the intruder to be refused twice", () => good.t.stats.rejected >= 2);
    assert.equal(good.got.length, 0);
    const url = `http://${b.addr}${raftPath}`;
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer secret" },
      { authorization: "Bearer secret", "x-raft-from": "n9" },
      { authorization: "Bearer guess", "x-raft-from": "n1", upgrade: "websocket" },
    ];
    for (const headers of attempts) {
      const res = await fetch(url, { headers });
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
  } finally {
    await closeAll([good.t, intruder.t], [a.server, b.server]);
  }
});

Deno.test("WebSocketTransport redials a peer that comes back, and never blocks while it is down", async () => {
  const a = serve();
  const b = serve();
  const port = b.server.addr.port;
  const peers = { n1: a.addr, n2: b.addr };
  const n1 = node("n1", peers, a.box, { maxQueue: 8 });
  let n2 = node("n2", peers, b.box);
  let b2: ReturnType<typeof serve> | undefined;
  try {
    n1.t.send("n2", snapshotMessage("n2"));
    await until("the first delivery", () => n2.got.length === 1);
    await n2.t.close();
    await b.server.shutdown();
    // Down: sending returns at once, and what does not fit the queue is dropped.
    const start = performance.now();
    for (let i = 0; i < 1000; i++) n1.t.send("n2", { type: "timeout-now", from: "n1", to: "n2", term: i });
    assert.ok(performance.now() - start < 100);
    await until("drops", () => n1.t.stats.messagesDropped >= 992);
    b2 = serve(port);
    n2 = node("n2", peers, b2.box);
    await until("n1 to redial n2", () => {
      n1.t.send("n2", snapshotMessage("n2"));
      return n2.got.some((m) => m.type === "snapshot");
    });
    assert.deepEqual(n2.got.find((m) => m.type === "snapshot"), snapshotMessage("n2"));
  } finally {
    await closeAll([n1.t, n2.t], [a.server, ...(b2 ? [b2.server] : [])]);
  }
});

Deno.test("WebSocketTransport: peers added later are dialed, removed ones dropped (membership changes)", async () => {
  const a = serve();
  const b = serve();
  const n1 = node("n1", {}, a.box);
  const n2 = node("n2", { n1: a.addr }, b.box);
  const heartbeat = (from: string, to: string): Message => ({
    type: "append",
    from,
    to,
    term: 1,
    prevIndex: 0,
    prevTerm: 0,
    entries: [],
    commit: 0,
  });
  try {
    // n1 does not know n2 yet: what n2 sends is refused (unknown peer) and what n1 sends to n2 goes nowhere.
    n1.t.send("n2", heartbeat("n1", "n2"));
    await until("n2 refused by n1", () => n1.t.stats.rejected > 0);
    n1.t.setPeers({ n1: a.addr, n2: b.addr });
    n1.t.send("n2", heartbeat("n1", "n2"));
    await until("n2 hears n1", () => n2.got.length > 0);
    n2.t.send("n1", heartbeat("n2", "n1"));
    await until("n1 hears n2", () => n1.got.length > 0);
    n1.t.setPeers({});
    const before = n2.got.length;
    n1.t.send("n2", heartbeat("n1", "n2"));
    const heard = n1.got.length;
    n2.t.send("n1", heartbeat("n2", "n1"));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(n2.got.length, before, "a removed peer is sent nothing");
    assert.equal(n1.got.length, heard, "and heard no more");
  } finally {
    await closeAll([n1.t, n2.t], [a.server, b.server]);
  }
});

Deno.test("WebSocketTransport sends a frame over the largest WebSocket message in pieces (a 70 MiB snapshot)", async () => {
  const { a, b, n1, n2 } = pair();
  try {
    // Deno's WebSocket server takes messages of at most 64 MiB: a larger one in one piece never arrived.
    const data = new Uint8Array(70 << 20);
    for (let i = 0; i < data.length; i += 4093) data[i] = i % 251;
    const big = snapshotMessage("n2") as Extract<Message, { type: "snapshot" }>;
    n1.t.send("n2", { ...big, snapshot: { ...big.snapshot, data } });
    n1.t.send("n2", { type: "vote-response", from: "n1", to: "n2", term: 2, granted: true });
    await until("the snapshot and the message after it", () => n2.got.length === 2, 20_000);
    const got = n2.got[0] as Extract<Message, { type: "snapshot" }>;
    assert.equal(got.snapshot.data.length, data.length);
    assert.ok(got.snapshot.data.every((v, i) => v === data[i]), "the same bytes");
    assert.equal(n2.got[1].type, "vote-response", "in order, after it");
  } finally {
    await closeAll([n1.t, n2.t], [a.server, b.server]);
  }
});

Deno.test("pieces: a peer that announces too much, sends more than announced, or another text is refused", () => {
  const bytes = (n: number) => new Uint8Array(n).buffer;
  const p = new Pieces(1000);
  assert.deepEqual(p.take(bytes(3)), new Uint8Array(3), "a whole frame as it is");
  assert.equal(p.take(JSON.stringify({ pieces: 2, bytes: 10 })), undefined);
  assert.equal(p.take(bytes(4)), undefined, "waiting for the second piece");
  assert.deepEqual(p.take(bytes(6)), new Uint8Array(10));
  assert.match(new Pieces(1000).take(JSON.stringify({ pieces: 2, bytes: 1001 })) as string, /over 1000/);
  const over = new Pieces(1000);
  over.take(JSON.stringify({ pieces: 2, bytes: 10 }));
  assert.match(over.take(bytes(11)) as string, /more bytes than announced/);
  const short = new Pieces(1000);
  short.take(JSON.stringify({ pieces: 2, bytes: 10 }));
  short.take(bytes(2));
  assert.match(short.take(bytes(2)) as string, /fewer bytes than announced/);
  const twice = new Pieces(1000);
  twice.take(JSON.stringify({ pieces: 2, bytes: 10 }));
  assert.match(twice.take(JSON.stringify({ pieces: 2, bytes: 10 })) as string, /while pieces were missing/);
  for (const text of ["hello", "{}", JSON.stringify({ pieces: 0, bytes: 0 }), JSON.stringify({ pieces: "2" })]) {
    assert.equal(typeof new Pieces(1000).take(text), "string", text);
  }
  assert.match(new Pieces(1000).take(new Blob([])) as string, /binary frames only/);
});

Deno.test("WebSocketTransport drops a peer that announces a frame over the bound; the peer redials and goes on", async () => {
  const { a, b, n1, n2 } = pair({ pieceBytes: 1024 }, { maxFrameBytes: 64 * 1024 });
  try {
    const big = snapshotMessage("n2") as Extract<Message, { type: "snapshot" }>;
    n1.t.send("n2", { ...big, snapshot: { ...big.snapshot, data: new Uint8Array(100 * 1024) } });
    const small = { ...big, snapshot: { ...big.snapshot, data: new Uint8Array(10 * 1024) } };
    await until("a frame in pieces under the bound to arrive after the refused one", () => {
      if (n2.got.length === 0) n1.t.send("n2", small);
      return n2.got.length > 0;
    }, 10_000);
    const got = n2.got[0] as Extract<Message, { type: "snapshot" }>;
    assert.equal(got.snapshot.data.length, 10 * 1024, "the frame over the bound never arrived");
  } finally {
    await closeAll([n1.t, n2.t], [a.server, b.server]);
  }
});
