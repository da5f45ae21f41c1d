/**
 * The proxy in front of a container (a real Docker engine, busybox httpd with CGI scripts): what the client says of
 * itself in X-Forwarded-* is replaced by what the proxy saw, a compressed answer arrives whole, and a container that
 * does not answer within `limits.timeout_ms` is a 504.
 */

import assert from "node:assert/strict";
import { Engine } from "../runtime/mod.ts";
import { get, orca, removeContainers, startServer, writeProject } from "./harness.ts";

const engine = new Engine();
const ready = await engine.ping() &&
  await engine.request("GET", "/images/orca-examples%2Fbusybox:1/json").then(() => true, () => false);
if (!ready) console.error("upstream_test: SKIPPED: no Docker engine or images (scripts/docker_engine.sh)");

/** A CGI script at /www/cgi-bin/NAME of `lines`. */
const script = (name: string, ...lines: string[]) =>
  [`#!/bin/sh`, ...lines].map((line, i) => `echo '${line}' ${i === 0 ? ">" : ">>"} /www/cgi-bin/${name}; `).join("") +
  `/bin/busybox chmod +x /www/cgi-bin/${name}; `;

Deno.test({
  name: "a container behind the proxy: forwarded headers set by the proxy, a gzip answer whole, a slow one a 504",
  ignore: !ready,
  async fn() {
    const server = await startServer();
    const project = `u${crypto.randomUUID().slice(0, 6)}`;
    const command = "mkdir -p /www/cgi-bin; " + script("env", "echo Content-Type: text/plain", "echo", "env") +
      script("slow", "/bin/sleep 5", "echo Content-Type: text/plain", "echo", "late") +
      script("count", "echo Content-Type: text/plain", "echo", "/bin/busybox wc -c") +
      "echo hello-gzip > /www/a.txt; /bin/busybox gzip -k /www/a.txt; exec httpd -f -p 8080 -h /www";
    const dir = await writeProject({
      [project]: `[[service]]\nname = "up"\nimage = "orca-examples/busybox:1"\nport = 8080\ntriggers = ["http:/*"]\n` +
        `command = ["/bin/sh", "-c", ${JSON.stringify(command)}]\n[service.limits]\ntimeout_ms = 1000\n`,
    });
    try {
      const r = await orca(server, "deploy", dir);
      assert.equal(r.code, 0, r.stderr);
      const port = new URL(server.httpUrl).port;
      const env = await get(`${server.httpUrl}/cgi-bin/env`, {
        headers: { "x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.example", forwarded: "for=6.6.6.6" },
      });
      assert.equal(env.status, 200, env.text);
      assert.match(env.text, /^HTTP_X_FORWARDED_FOR=127\.0\.0\.1$/m);
      assert.match(env.text, /^HTTP_X_FORWARDED_PROTO=http$/m);
      assert.match(env.text, new RegExp(`^HTTP_X_FORWARDED_HOST=127\\.0\\.0\\.1:${port}$`, "m"));
      assert.match(
        env.text,
        new RegExp(`^HTTP_FORWARDED=for=127\\.0\\.0\\.1;proto=http;host="127\\.0\\.0\\.1:${port}"$`, "m"),
      );
      assert.doesNotMatch(env.text, /6\.6\.6\.6|evil\.example/);

      // The container's answer is gzip: passed on as it came, with its encoding (this test's fetch decodes it).
      const gz = await fetch(`${server.httpUrl}/a.txt`, { headers: { "accept-encoding": "gzip" } });
      assert.equal(gz.status, 200);
      assert.equal(await gz.text(), "hello-gzip\n");

      // Bodies: a small one read first, a large one streamed through (never held whole by the proxy).
      for (const size of [1000, 8 * 1024 * 1024]) {
        const res = await fetch(`${server.httpUrl}/cgi-bin/count`, { method: "POST", body: new Uint8Array(size) });
        assert.equal(res.status, 200);
        assert.equal((await res.text()).trim(), String(size));
      }

      const started = Date.now();
      const slow = await get(`${server.httpUrl}/cgi-bin/slow`);
      assert.equal(slow.status, 504, slow.text);
      assert.match(slow.text, /did not answer in time/);
      assert.ok(Date.now() - started < 4000, `${Date.now() - started} ms`);
      assert.equal((await get(`${server.httpUrl}/a.txt`)).text, "hello-gzip\n");
    } finally {
      await server.stop();
      await removeContainers(server.home);
    }
  },
});
