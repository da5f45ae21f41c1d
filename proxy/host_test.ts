import assert from "node:assert/strict";
import fc from "fast-check";
import { readService } from "../config/mod.ts";
import { KNOWN_MAX, knownHosts, parseHost } from "./host.ts";
import { createProxy } from "./proxy.ts";
import { routesOf, RouteTable } from "./router.ts";

Deno.test("Host: host[:port] with a reg-name, IPv4 or bracketed IP literal", () => {
  assert.deepEqual(parseHost("Example.COM"), { hostname: "example.com" });
  assert.deepEqual(parseHost("example.com.:8080"), { hostname: "example.com", port: 8080 });
  assert.deepEqual(parseHost("127.0.0.1:"), { hostname: "127.0.0.1" });
  assert.deepEqual(parseHost("[::1]:80"), { hostname: "[::1]", port: 80 });
  assert.deepEqual(parseHost("[::1]"), { hostname: "[::1]" });
  for (
    const bad of ["", "a/b", "a?b", "a#b", "u@h", "a b", "h:99999", "h:abc", "h:-1", "[::1", "::1", "[zz]", "a%41"]
  ) {
    assert.equal(parseHost(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(parseHost("a".repeat(300)), undefined);
});

Deno.test("Host: a value read again gives the same answer, which nobody can change, and what is kept is bounded", () => {
  const first = parseHost("Repeat.example:8443")!;
  assert.equal(parseHost("Repeat.example:8443"), first);
  assert.ok(Object.isFrozen(first));
  assert.throws(() => ((first as { hostname: string }).hostname = "evil.example"));
  for (let i = 0; i < 2 * KNOWN_MAX + 10; i++) parseHost(`h${i}.example`);
  assert.ok(knownHosts() <= KNOWN_MAX);
  assert.deepEqual(parseHost("Repeat.example:8443"), { hostname: "repeat.example", port: 8443 });
  for (let i = 0; i < 3; i++) assert.equal(parseHost("a/b"), undefined);
});

Deno.test("Host: whatever is accepted can never change the path of a URL built from it", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80, unit: "binary-ascii" }), (value) => {
      const parsed = parseHost(value);
      if (!parsed) return;
      const url = new URL(`http://${value}/route/here?q=1`);
      assert.equal(url.pathname, "/route/here");
      assert.equal(url.search, "?q=1");
      assert.equal(url.username, "");
    }),
    { numRuns: 2000 },
  );
});

/** Sends one raw request; returns the status code (0 when the server closed without answering). */
async function rawStatus(port: number, request: Uint8Array): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(request);
    let text = "";
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
  } finally {
    conn.close();
  }
}

Deno.test("proxy fuzz: arbitrary request lines and Host headers never give a 5xx, and never reroute", async () => {
  const spec = readService({ name: "echo", image: "x", triggers: ["http:/echo/*"] }, { file: "test" }, "p");
  const seen: string[] = [];
  const proxy = createProxy({
    routes: () => new RouteTable(routesOf(spec)),
    serve: (_service, request) => {
      const path = new URL(request.url).pathname;
      seen.push(path);
      return Promise.resolve(new Response(`path=${path}`));
    },
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r, info) => proxy(r, info.remoteAddr));
  try {
    const printable = fc.string({ maxLength: 60, unit: "binary-ascii" }).map((s) => s.replace(/[\r\n]/g, ""));
    const path = fc.oneof(
      fc.constantFrom("/echo/x", "/zzz", "/", "//echo/x", "/echo/%2e%2e/x", "/%E0%A4%A", "*"),
      printable.map((s) => `/${s.replace(/[\s]/g, "")}`),
    );
    await fc.assert(
      fc.asyncProperty(printable, path, fc.boolean(), async (host, target, withHost) => {
        const head = `GET ${target} HTTP/1.1\r\n${withHost ? `Host: ${host}\r\n` : ""}Connection: close\r\n\r\n`;
        const before = seen.length;
        const { status, text } = await rawStatus(server.addr.port, new TextEncoder().encode(head));
        assert.ok(status > 0 && status < 500, `${JSON.stringify(head)} -> ${status} ${text}`);
        if (status === 200) {
          // Routed on the request's own path: whatever Host says, the service saw the path the client asked for.
          assert.equal(seen.length, before + 1);
          assert.equal(seen.at(-1), new URL(target, "http://any").pathname);
        }
      }),
      { numRuns: 300 },
    );
  } finally {
    await server.shutdown();
  }
});
