/**
 * HTTPS end to end against a real ACME CA (pebble): certificates issued by
 * HTTP-01 through Orca's own proxy, many domains on one port by SNI, HTTP/2
 * by ALPN, a service's own certificate, `tls = "off"`, the redirect and its
 * opt-out, a restart that re-issues nothing, renewal of a short-lived
 * certificate, and a CA that cannot be reached (the error in `orca status`,
 * the service still on HTTP).
 */

import assert from "node:assert/strict";
import { examplesDir, type Launched, launchServer, orca, until, writeProject } from "./harness.ts";
import { curlHttps, freePort, pebbleInstalled, startPebble } from "./pebble.ts";

const module = `${examplesDir}/services/hello-js/hello.wasm`;

interface HttpsServer {
  server: Launched;
  home: string;
  api: string;
  httpPort: number;
  httpsPort: number;
  token: string;
}

async function startHttps(home: string, httpPort: number, acme: string[], httpsPort = 0): Promise<HttpsServer> {
  const server = await launchServer([
    "server",
    "--api-port",
    "0",
    "--http-port",
    String(httpPort),
    "--https-port",
    String(httpsPort),
    "--listen",
    "127.0.0.1",
    "--home",
    home,
    "--cert-check-secs",
    "1",
    ...acme,
  ], { group: true });
  const out = server.output();
  return {
    server,
    home,
    api: /api\s+(\S+)\/api\/v1/.exec(out)![1],
    httpPort,
    httpsPort: Number(/https\s+https:\/\/[^:]+:(\d+)/.exec(out)![1]),
    token: (await Deno.readTextFile(`${home}/cluster.token`)).trim(),
  };
}

interface DomainState {
  domain: string;
  state: string;
  source: string;
  notAfter?: number;
  error?: string;
}

async function domains(s: HttpsServer): Promise<DomainState[]> {
  const res = await fetch(`${s.api}/api/v1/certificates`, { headers: { authorization: `Bearer ${s.token}` } });
  return (await res.json()).domains;
}

function valid(s: HttpsServer, names: string[], after = 0): Promise<DomainState[]> {
  return until(`certificates for ${names.join(", ")}`, async () => {
    const all = await domains(s);
    const ok = names.every((n) => all.some((d) => d.domain === n && d.state === "valid" && (d.notAfter ?? 0) > after));
    return ok ? all : undefined;
  }, 60_000);
}

/** A GET over plain HTTP with a chosen Host, on a raw socket: the status and the Location header. */
async function plain(port: number, host: string, path: string): Promise<{ status: number; location?: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
  let raw = "";
  for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) raw += chunk;
  const location = /\r\nlocation: ([^\r]*)/i.exec(raw)?.[1];
  return { status: Number(raw.split(" ")[1]), ...(location !== undefined && { location }) };
}

async function selfSigned(dir: string, name: string): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
      ...["-keyout", `${dir}/own.key`, "-out", `${dir}/own.pem`, "-subj", `/CN=${name}`],
      ...["-addext", `subjectAltName=DNS:${name}`],
    ],
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test({
  name: "https: ACME certificates by SNI, HTTP/2, own files, tls off, redirect, and a restart that re-issues nothing",
  ignore: !pebbleInstalled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const httpPort = freePort();
    const pebble = await startPebble(httpPort);
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const acme = [
      "--acme-directory",
      pebble.directory,
      "--acme-ca-cert",
      pebble.caFile,
      "--acme-email",
      "ops@orca.test",
    ];
    let s = await startHttps(home, httpPort, acme);
    try {
      const service = (name: string, domain: string, extra = "") =>
        `[[service]]\nname = "${name}"\nmodule = "${module}"\ndomain = "${domain}"\n${extra}\n`;
      const dir = await writeProject({
        edge: service("edge", "edge.orca.test") + service("second", "second.orca.test") +
          service("stay", "stay.orca.test", "https_redirect = false") +
          service("plain", "plain.orca.test", 'tls = "off"') +
          service("own", "own.orca.test", 'tls = { cert = "own.pem", key = "own.key" }'),
      });
      await selfSigned(`${dir}/services/edge`, "own.orca.test");
      const deployed = await orca(undefined, "deploy", dir, "--server", s.api, "--token", s.token);
      assert.deepEqual(deployed.code, 0, deployed.stderr);
      const issued = await valid(s, ["edge.orca.test", "second.orca.test", "stay.orca.test"]);

      // One port, a certificate per name (curl checks the name against what it is given), h2 by ALPN.
      const edge = await curlHttps("edge.orca.test", s.httpsPort, "/js/x", pebble.rootFile);
      assert.deepEqual([edge.status, edge.version], [200, "2"], edge.error);
      assert.match(edge.body, /hello from a JavaScript edge function/);
      const h1 = await curlHttps("second.orca.test", s.httpsPort, "/", pebble.rootFile, ["--http1.1"]);
      assert.deepEqual([h1.status, h1.version], [200, "1.1"], h1.error);
      const own = await curlHttps("own.orca.test", s.httpsPort, "/", `${dir}/services/edge/own.pem`);
      assert.deepEqual(own.status, 200, own.error);
      assert.deepEqual(issued.find((d) => d.domain === "own.orca.test")?.source, "own");
      // No certificate for a domain served on HTTP only, nor for a name no service has: the handshake fails.
      assert.notEqual((await curlHttps("plain.orca.test", s.httpsPort, "/", pebble.rootFile)).status, 200);
      assert.notEqual((await curlHttps("nobody.orca.test", s.httpsPort, "/", pebble.rootFile)).status, 200);

      // Plain HTTP redirects once a certificate exists, except where a service opts out or has none.
      const redirected = await plain(httpPort, "edge.orca.test", "/js/a?b=1");
      assert.deepEqual(redirected.status, 308);
      assert.deepEqual(redirected.location, `https://edge.orca.test:${s.httpsPort}/js/a?b=1`);
      assert.deepEqual((await plain(httpPort, "stay.orca.test", "/")).status, 200);
      assert.deepEqual((await plain(httpPort, "plain.orca.test", "/")).status, 200);
      const status = await orca(undefined, "status", "--server", s.api, "--token", s.token);
      assert.match(status.stdout, /edge\.orca\.test\s+edge\/edge\s+acme\s+valid/);
      assert.match(status.stdout, /plain\.orca\.test\s+edge\/plain\s+off\s+off/);

      // A restart serves the stored certificates at once, and asks the CA for nothing.
      await s.server.end("SIGTERM");
      s = await startHttps(home, httpPort, acme, s.httpsPort);
      const again = await curlHttps("edge.orca.test", s.httpsPort, "/js/x", pebble.rootFile);
      assert.deepEqual(again.status, 200, again.error);
      const after = await domains(s);
      const notAfter = (list: DomainState[]) => list.find((d) => d.domain === "edge.orca.test")?.notAfter;
      assert.deepEqual(notAfter(after), notAfter(issued));
      await new Promise((r) => setTimeout(r, 1500));
      assert(!/requesting a certificate/.test(s.server.output()), s.server.output());
    } finally {
      await s.server.end("SIGKILL");
      await pebble.stop();
    }
  },
});

Deno.test({
  name: "https: a short-lived certificate is renewed, and served from the next connection on",
  ignore: !pebbleInstalled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const httpPort = freePort();
    // 15 s certificates: renewed once a third of the life is left (after 10 s).
    const pebble = await startPebble(httpPort, 15);
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const s = await startHttps(home, httpPort, ["--acme-directory", pebble.directory, "--acme-ca-cert", pebble.caFile]);
    try {
      const dir = await writeProject({
        edge: `[[service]]\nname = "edge"\nmodule = "${module}"\ndomain = "edge.orca.test"\n`,
      });
      assert.deepEqual((await orca(undefined, "deploy", dir, "--server", s.api, "--token", s.token)).code, 0);
      const first = (await valid(s, ["edge.orca.test"]))[0].notAfter!;
      const renewed = (await valid(s, ["edge.orca.test"], first))[0].notAfter!;
      assert(renewed > first);
      const res = await curlHttps("edge.orca.test", s.httpsPort, "/js/x", pebble.rootFile);
      assert.deepEqual(res.status, 200, res.error);
      assert.match(s.server.output(), /renewing a certificate for edge\.orca\.test/);
    } finally {
      await s.server.end("SIGKILL");
      await pebble.stop();
    }
  },
});

Deno.test({
  name: "https: a CA that cannot be reached: the error in orca status, retried later, the service on HTTP meanwhile",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const httpPort = freePort();
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const s = await startHttps(home, httpPort, ["--acme-directory", `https://127.0.0.1:${freePort()}/dir`]);
    try {
      const dir = await writeProject({
        edge: `[[service]]\nname = "edge"\nmodule = "${module}"\ndomain = "edge.orca.test"\n`,
      });
      assert.deepEqual((await orca(undefined, "deploy", dir, "--server", s.api, "--token", s.token)).code, 0);
      const failed = await until("the failure", async () => (await domains(s)).find((d) => d.state === "failed"));
      assert.match(failed.error ?? "", /connect|refused/i);
      const status = await orca(undefined, "status", "--server", s.api, "--token", s.token);
      assert.match(status.stdout, /edge\.orca\.test\s+edge\/edge\s+acme\s+failed \(1 failed, retry in \d+ s: /);
      const res = await plain(httpPort, "edge.orca.test", "/js/x");
      assert.deepEqual(res.status, 200);
    } finally {
      await s.server.end("SIGKILL");
    }
  },
});

Deno.test({
  name: "https: a worker answers the CA's challenge from the replicated state, and serves the leader's certificate",
  ignore: !pebbleInstalled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The CA reaches the worker (127.0.0.2) only: the leader's challenge must travel with the state.
    const workerHttp = freePort();
    const pebble = await startPebble(workerHttp, 3600, "127.0.0.2");
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const s = await startHttps(home, freePort(), [
      "--acme-directory",
      pebble.directory,
      "--acme-ca-cert",
      pebble.caFile,
    ]);
    const workerHome = await Deno.makeTempDir({ prefix: "orca-test-worker-" });
    const worker = await launchServer([
      ...["join", new URL(s.api).host, "--token", s.token, "--listen", "127.0.0.2", "--home", workerHome],
      ...["--api-port", "0", "--http-port", String(workerHttp), "--https-port", "0"],
    ], { group: true });
    try {
      const workerHttps = Number(/https\s+https:\/\/[^:]+:(\d+)/.exec(worker.output())![1]);
      const dir = await writeProject({
        edge: `[[service]]\nname = "edge"\nmodule = "${module}"\ndomain = "edge.orca.test"\n`,
      });
      assert.equal((await orca(undefined, "deploy", dir, "--server", s.api, "--token", s.token)).code, 0);
      await valid(s, ["edge.orca.test"]);
      const res = await until("the worker's HTTPS", async () => {
        const r = await curlHttps("edge.orca.test", workerHttps, "/js/x", pebble.rootFile, [], "127.0.0.2");
        return r.status === 200 ? r : undefined;
      });
      assert.match(res.body, /hello from a JavaScript edge function/);
    } finally {
      await worker.end("SIGKILL");
      await s.server.end("SIGKILL");
      await pebble.stop();
    }
  },
});

Deno.test({
  name: "https: a service's own key from a secret, checked at deploy and served by SNI; never in the store",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "orca-test-home-" });
    const s = await startHttps(home, freePort(), []);
    const cli = (...args: string[]) =>
      orca(undefined, args[0], "--server", s.api, "--token", s.token, ...args.slice(1));
    try {
      const service = (key: string) =>
        `[[service]]\nname = "own"\nmodule = "${module}"\ndomain = "own.orca.test"\n` +
        `tls = { cert = "own.pem", key = "\${secrets.${key}}" }\n`;
      const dir = await writeProject({ edge: service("site_key") });
      const other = await Deno.makeTempDir();
      await selfSigned(`${dir}/services/edge`, "own.orca.test");
      const keyText = await Deno.readTextFile(`${dir}/services/edge/own.key`);
      // The key file leaves the project: the secret is where it lives now.
      await Deno.rename(`${dir}/services/edge/own.key`, `${other}/site.key`);
      assert.deepEqual((await cli("secrets", "set", "site_key", "--from-file", `${other}/site.key`)).code, 0);
      await selfSigned(other, "own.orca.test");
      assert.deepEqual((await cli("secrets", "set", "wrong_key", "--from-file", `${other}/own.key`)).code, 0);
      // A key that does not belong to the certificate is refused at deploy, naming the field and the secret.
      const wrong = await writeProject({ edge: service("wrong_key") });
      await Deno.copyFile(`${dir}/services/edge/own.pem`, `${wrong}/services/edge/own.pem`);
      const refused = await cli("deploy", wrong);
      assert.deepEqual(refused.code, 1);
      assert.match(
        refused.stderr,
        /edge\/own: tls\.key \(\$\{secrets\.wrong_key\}\) does not belong to the certificate/,
      );

      const deployed = await cli("deploy", dir);
      assert.deepEqual(deployed.code, 0, deployed.stderr);
      const served = await until("the certificate served", async () => {
        const r = await curlHttps("own.orca.test", s.httpsPort, "/", `${dir}/services/edge/own.pem`);
        return r.status === 200 ? r : undefined;
      });
      assert.match(served.body, /hello/i);
      const keyBody = keyText.split("\n").find((l) => l.length > 40)!;
      for (const file of ["orca.db", "orca.db-wal"]) {
        const text = new TextDecoder("latin1").decode(
          await Deno.readFile(`${home}/${file}`).catch(() => new Uint8Array()),
        );
        assert(!text.includes(keyBody), `${file} holds the private key in the clear`);
      }
    } finally {
      await s.server.end("SIGKILL");
    }
  },
});
