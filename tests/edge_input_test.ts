/**
 * Hostile input at the proxy's port, on a real `orca server`: a malformed
 * Host, a Host with a port, an internationalized name raw and in its ASCII
 * form, a request smuggling attempt (Content-Length with Transfer-Encoding),
 * two Hosts, and clients trickling their headers. Each gets a clear answer
 * (or none), nothing reaches a service it should not, and the proxy goes on
 * serving everyone else.
 */

import assert from "node:assert/strict";
import { examplesDir, orca, startServer, writeProject } from "./harness.ts";

const module = `${examplesDir}/services/hello-js/hello.wasm`;

/** Sends `text` on a new connection; what comes back until the server closes it or `ms` pass. */
async function raw(port: number, text: string, ms = 3000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(text));
  let out = "";
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + ms;
  try {
    while (Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((r) => timer = setTimeout(() => r(null), Math.max(1, deadline - Date.now())));
      const n = await Promise.race([conn.read(buf), late]);
      clearTimeout(timer);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
      if (/connection: close/i.test(out) && /\r\n\r\n/.test(out)) break;
    }
  } catch {
    // reset by the server
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
  return out;
}

const status = (answer: string) => Number(answer.split(" ")[1]);

Deno.test({
  name: "edge input: malformed and odd Hosts, IDN, CL+TE smuggling, trickled headers: clear errors, others served",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    try {
      const dir = await writeProject({
        edge: `[[service]]\nname = "edge"\nmodule = "${module}"\ndomain = "edge.orca.test"\n\n` +
          `[[service]]\nname = "idn"\nmodule = "${module}"\ndomain = "bücher.orca.test"\n`,
      });
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      const port = Number(new URL(server.httpUrl).port);
      const get = (host: string, path = "/js/x") =>
        raw(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

      const malformed = await get("edge.orca.test/evil?");
      assert.equal(status(malformed), 400);
      assert.match(malformed, /malformed Host header/);
      assert.equal(status(await get("edge.orca.test:8080")), 200, "a port in Host is not part of the name");
      assert.equal(status(await get("bücher.orca.test")), 400, "a raw UTF-8 Host is not a valid Host");
      const idn = await get("xn--bcher-kva.orca.test");
      assert.equal(status(idn), 200, idn);
      assert.match((await orca(server, "status")).stdout, /xn--bcher-kva\.orca\.test/);
      assert.equal(status(await raw(port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), 400);

      // Both lengths: refused whole, and what hides behind it is never served.
      const smuggle = await raw(
        port,
        "POST /js/x HTTP/1.1\r\nHost: edge.orca.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: edge.orca.test\r\n\r\n",
      );
      assert.equal(status(smuggle), 400);
      assert.equal(smuggle.match(/HTTP\/1\.1 /g)?.length, 1, smuggle);
      const access = await orca(server, "logs", "--access");
      assert.doesNotMatch(access.stdout, /smuggled/);

      // Twenty clients trickle header bytes; everyone else is served meanwhile, at once.
      const trickling = await Promise.all(Array.from({ length: 20 }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(new TextEncoder().encode("GET /js/x HTTP/1.1\r\nHost: edge.orca.test\r\nX-Slow: "));
        return conn;
      }));
      const drip = setInterval(() => {
        for (const conn of trickling) conn.write(new TextEncoder().encode("a")).catch(() => {});
      }, 200);
      try {
        for (let i = 0; i < 10; i++) {
          const t0 = performance.now();
          assert.equal(status(await get("edge.orca.test")), 200);
          assert.ok(performance.now() - t0 < 2000, "served while others trickle");
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        clearInterval(drip);
        for (const conn of trickling) {
          try {
            conn.close();
          } catch {
            // closed by the server
          }
        }
      }
    } finally {
      await server.stop();
    }
  },
});
