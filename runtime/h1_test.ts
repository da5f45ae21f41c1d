import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { UpstreamError, UpstreamPool, type UpstreamRequest } from "./h1.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a test server saw: each request's head and body, and its connections. */
interface Seen {
  heads: string[];
  bodies: string[];
  connections: number;
  closed: number;
}

type Answer = string | Uint8Array | null | ((conn: Deno.Conn) => Promise<void>);

/**
 * A TCP server that reads each request (head, then a body framed by content-length or chunked) and writes what
 * `answer` gives for it, byte for byte: null closes the connection unanswered.
 */
function rawServer(answer: (head: string, index: number) => Answer) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen = { heads: [], bodies: [], connections: 0, closed: 0 };
  const conns = new Set<Deno.Conn>();
  const serveConn = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const more = async () => {
      const chunk = new Uint8Array(65536);
      const n = await conn.read(chunk);
      if (n === null) return false;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      return true;
    };
    const text = () => decoder.decode(buf);
    try {
      for (;;) {
        while (!text().includes("\r\n\r\n")) if (!(await more())) return;
        const end = text().indexOf("\r\n\r\n") + 4;
        const head = text().slice(0, end);
        buf = buf.slice(end);
        let body = "";
        const length = /content-length: (\d+)/i.exec(head);
        if (length) {
          while (buf.length < Number(length[1])) if (!(await more())) return;
          body = decoder.decode(buf.slice(0, Number(length[1])));
          buf = buf.slice(Number(length[1]));
        } else if (/transfer-encoding: chunked/i.test(head)) {
          while (!text().includes("0\r\n\r\n")) if (!(await more())) return;
          const raw = text();
          const at = raw.indexOf("0\r\n\r\n") + 5;
          body = raw.slice(0, at);
          buf = buf.slice(at);
        }
        const index = seen.heads.length;
        seen.heads.push(head);
        seen.bodies.push(body);
        const out = answer(head, index);
        if (out === null) return;
        if (typeof out === "function") await out(conn);
        else await write(conn, typeof out === "string" ? encoder.encode(out) : out);
      }
    } catch {
      // the client went away
    } finally {
      seen.closed++;
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      seen.connections++;
      conns.add(conn);
      serveConn(conn);
    }
  })();
  return {
    port: listener.addr.port,
    seen,
    async close() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting.catch(() => {});
    },
  };
}

async function write(conn: Deno.Conn, bytes: Uint8Array) {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

const ok = (body: string, extra = "") => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;
const get = (target = "/", headers: [string, string][] = []): UpstreamRequest => ({
  method: "GET",
  target,
  headers,
  timeoutMs: 2_000,
});
const tick = () => new Promise((r) => setTimeout(r, 30));

async function withServer(
  answer: (head: string, index: number) => Answer,
  fn: (s: ReturnType<typeof rawServer>, pool: UpstreamPool) => Promise<void>,
) {
  const server = rawServer(answer);
  const pool = new UpstreamPool();
  try {
    await fn(server, pool);
  } finally {
    pool.close();
    await server.close();
    await tick();
  }
}

async function refusal(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    const res = await promise;
    if (res instanceof Response) await res.arrayBuffer();
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `an UpstreamError, not ${err}`);
    return err;
  }
  throw new Error("it did not fail");
}

Deno.test("h1: keep-alive: 20 requests on one connection; the head is framed by the client, Host added", async () => {
  await withServer(
    (_head, i) => ok(`answer ${i}`, "connection: x-secret\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\n"),
    async (server, pool) => {
      for (let i = 0; i < 20; i++) {
        const res = await pool.request("127.0.0.1", server.port, get(`/p?q=${i}`, [["x-a", "1"]]));
        assert.equal(res.status, 200);
        assert.equal(await res.text(), `answer ${i}`);
        assert.equal(res.headers.get("x-secret"), null, "a header Connection names stays on that connection");
        assert.equal(res.headers.get("keep-alive"), null);
      }
      assert.equal(server.seen.connections, 1);
      assert.match(server.seen.heads[3], /^GET \/p\?q=3 HTTP\/1\.1\r\nx-a: 1\r\nhost: 127\.0\.0\.1:\d+\r\n\r\n$/);
    },
  );
});

Deno.test("h1: bodies out: held whole with a length, streamed with a declared length, streamed chunked", async () => {
  await withServer(() => ok("done"), async (server, pool) => {
    const stream = (parts: string[]) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (const p of parts) c.enqueue(encoder.encode(p));
          c.close();
        },
      });
    // `declared`: the Content-Length among the headers (a held body's own length wins over a wrong one).
    const post = (body: UpstreamRequest["body"], declared?: string) =>
      pool.request("127.0.0.1", server.port, {
        method: "POST",
        target: "/",
        headers: [...(declared !== undefined ? [["content-length", declared]] : []), ["host", "app.example"]] as [
          string,
          string,
        ][],
        body,
        timeoutMs: 2_000,
      }).then((r) => r.text());
    assert.equal(await post(encoder.encode("hello"), "999"), "done");
    assert.equal(await post(stream(["ab", "cd"]), "4"), "done");
    assert.equal(await post(stream(["x".repeat(20), "yz"])), "done");
    assert.equal(await post(undefined, "999"), "done");
    assert.match(server.seen.heads[0], /host: app\.example\r\ncontent-length: 5\r\n\r\n$/);
    assert.equal(server.seen.bodies[0], "hello");
    assert.match(server.seen.heads[1], /content-length: 4\r\n/);
    assert.equal(server.seen.bodies[1], "abcd");
    assert.match(server.seen.heads[2], /transfer-encoding: chunked\r\n/);
    assert.doesNotMatch(server.seen.heads[2], /content-length/);
    assert.equal(server.seen.bodies[2], `14\r\n${"x".repeat(20)}\r\n2\r\nyz\r\n0\r\n\r\n`);
    assert.match(server.seen.heads[3], /content-length: 0\r\n/, "a POST without a body says so");
    assert.equal(server.seen.connections, 1);
    // A streamed body longer than it declared is not sent on as if it were right.
    await refusal(post(stream(["abcdef"]), "3"));
  });
});

Deno.test("h1: answers in: chunked, until close, HEAD, 204, interim 100, gzip untouched, a long one streamed", async () => {
  const gz = gzipSync(encoder.encode("zipped ".repeat(50)));
  const long = "L".repeat(300_000);
  await withServer((head) => {
    const path = head.split(" ")[1];
    switch (path) {
      case "/chunked":
        return "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";
      case "/head":
        return "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n";
      case "/204":
        return "HTTP/1.1 204 No Content\r\n\r\n";
      case "/continue":
        return `HTTP/1.1 100 Continue\r\n\r\n${ok("after 100")}`;
      case "/gzip": {
        const h = encoder.encode(`HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${gz.length}\r\n\r\n`);
        const all = new Uint8Array(h.length + gz.length);
        all.set(h);
        all.set(gz, h.length);
        return all;
      }
      case "/long":
        return ok(long);
      case "/lf":
        return async (conn) => {
          await write(conn, encoder.encode("HTTP/1.0 200 OK\nContent-Type: text/plain\n\nbare LF"));
          conn.close();
        };
      case "/close":
        return async (conn) => {
          await write(conn, encoder.encode("HTTP/1.1 200 OK\r\n\r\nuntil "));
          await write(conn, encoder.encode("the end"));
          conn.close();
        };
    }
    return ok("?");
  }, async (server, pool) => {
    const at = (path: string, method = "GET") => pool.request("127.0.0.1", server.port, { ...get(path), method });
    assert.equal(await (await at("/chunked")).text(), "hello world");
    const head = await at("/head", "HEAD");
    assert.equal(head.headers.get("content-length"), "1234");
    assert.equal(await head.text(), "");
    assert.equal((await at("/204")).status, 204);
    assert.equal(await (await at("/continue")).text(), "after 100");
    const zipped = await at("/gzip");
    assert.equal(zipped.headers.get("content-encoding"), "gzip", "a proxy passes the encoding on as it came");
    assert.deepEqual(new Uint8Array(await zipped.arrayBuffer()), new Uint8Array(gz));
    const streamed = await at("/long");
    assert.ok(streamed.body);
    assert.equal((await streamed.text()).length, long.length);
    assert.equal(server.seen.connections, 1, "every answer above left the connection fit for the next");
    assert.equal(await (await at("/close")).text(), "until the end");
    assert.equal(await (await at("/chunked")).text(), "hello world", "a new connection after one that closed");
    assert.equal(server.seen.connections, 2);
    const lf = await at("/lf");
    assert.equal(lf.headers.get("content-type"), "text/plain", "a head of bare LFs (busybox CGI), as RFC 9112 allows");
    assert.equal(await lf.text(), "bare LF");
  });
});

Deno.test("h1: hostile answers are refused (502-worthy), never guessed at; the pool goes on", async () => {
  const answers: Record<string, Answer> = {
    "/huge-head": `HTTP/1.1 200 OK\r\n${"x-pad: ".padEnd(1000, "p")}\r\n`.repeat(70),
    "/fold": "HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\ncontent-length: 0\r\n\r\n",
    "/both": "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "/gzip-chunked": "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "/two-lengths": "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
    "/status": "HTTP/2 200 OK\r\n\r\n",
    "/name": "HTTP/1.1 200 OK\r\nbad name: 1\r\ncontent-length: 0\r\n\r\n",
    "/switch": "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "/status-999": "HTTP/1.1 999 What\r\ncontent-length: 0\r\n\r\n",
    "/silent": null,
  };
  await withServer((head) => {
    const path = head.split(" ")[1];
    return path in answers ? answers[path] : ok("fine");
  }, async (server, pool) => {
    for (const path of Object.keys(answers)) {
      const err = await refusal(pool.request("127.0.0.1", server.port, get(path))).catch((e) => {
        throw new Error(`${path}: ${e.message}`);
      });
      assert.equal(err.kind, path === "/silent" ? "closed" : "protocol", `${path}: ${err.message}`);
    }
    assert.equal(await (await pool.request("127.0.0.1", server.port, get("/"))).text(), "fine");
  });
  // A bad chunk size fails the body's stream, not the process.
  await withServer(
    () => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    async (server, pool) => {
      const res = await pool.request("127.0.0.1", server.port, get());
      await assert.rejects(res.text(), /chunk size/);
    },
  );
});

Deno.test("h1: timeout for the head only, refused connections, and a kept connection closed by its server", async () => {
  await withServer((head) => {
    if (head.startsWith("GET /hang")) return () => new Promise((r) => setTimeout(r, 1_000));
    if (head.startsWith("GET /slow-body")) {
      return async (conn) => {
        await write(conn, encoder.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\na"));
        await new Promise((r) => setTimeout(r, 300));
        await write(conn, encoder.encode("b"));
      };
    }
    return ok("ok");
  }, async (server, pool) => {
    const started = performance.now();
    const err = await refusal(pool.request("127.0.0.1", server.port, { ...get("/hang"), timeoutMs: 150 }));
    assert.equal(err.kind, "timeout");
    assert.equal(err.message, "no answer within 0.15 s");
    assert.ok(performance.now() - started < 900);
    const slow = await pool.request("127.0.0.1", server.port, { ...get("/slow-body"), timeoutMs: 150 });
    assert.equal(await slow.text(), "ab", "a body takes as long as it takes");
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const pool = new UpstreamPool();
  assert.equal((await refusal(pool.request("127.0.0.1", port, get()))).kind, "connect");

  // The server closes each connection after its first answer, once idle: the next request never notices.
  await withServer(() => async (conn) => {
    await write(conn, encoder.encode(ok("one")));
    await new Promise((r) => setTimeout(r, 20));
    conn.close();
  }, async (server, pool) => {
    for (let i = 0; i < 3; i++) {
      assert.equal(await (await pool.request("127.0.0.1", server.port, get())).text(), "one");
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(server.seen.connections, 3);
  });
  // The close meets the next request on its way: a GET is sent again on a fresh connection, a POST is not.
  await withServer((_h, i) => (i % 2 === 1 ? null : ok("first")), async (server, pool) => {
    assert.equal(await (await pool.request("127.0.0.1", server.port, get())).text(), "first");
    assert.equal(await (await pool.request("127.0.0.1", server.port, get())).text(), "first", "sent again");
    const post = pool.request("127.0.0.1", server.port, { ...get(), method: "POST", body: encoder.encode("x") });
    assert.equal((await refusal(post)).kind, "closed");
  });
});

Deno.test("h1: the pool keeps at most 64 idle connections an address; close() ends them", async () => {
  await withServer(() => async (conn) => {
    await new Promise((r) => setTimeout(r, 20));
    await write(conn, encoder.encode(ok("x")));
  }, async (server, pool) => {
    const all = await Promise.all(Array.from({ length: 80 }, () => pool.request("127.0.0.1", server.port, get())));
    for (const res of all) assert.equal(await res.text(), "x");
    assert.equal(server.seen.connections, 80);
    await tick();
    assert.equal(server.seen.closed, 16, "past 64 idle, connections are closed");
    pool.close();
    await tick();
    assert.equal(server.seen.closed, 80);
  });
});

Deno.test("h1: requestTo takes a node's host:port; anything else is refused before a connection is tried", async () => {
  await withServer(() => ok("by address"), async (server, pool) => {
    assert.equal(await (await pool.requestTo(`127.0.0.1:${server.port}`, get())).text(), "by address");
    for (const bad of ["127.0.0.1", ":80", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x"]) {
      const err = await refusal(pool.requestTo(bad, get()));
      assert.equal(err.kind, "connect", bad);
      assert.match(err.message, /not a host:port address/);
    }
  });
});
