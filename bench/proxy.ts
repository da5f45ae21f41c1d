/**
 * `deno task bench proxy`: Orca's proxy against nginx (Debian's, as its users
 * run it: a plain reverse proxy with upstream keep-alive, `worker_processes
 * auto`), both in front of the same container replica (a Deno.serve hello
 * with keep-alive: busybox with this machine's Deno mounted), on this machine, over HTTP and HTTPS (the same certificate),
 * with wrk at 16 and 64 connections. Prints req/s and p50/p99 side by side,
 * and the ratios (goal: Orca >= 0.8x nginx's req/s, p99 <= 1.5x). Then the
 * floor for any proxy on Deno (bench/plain_proxy.ts: Deno.serve and fetch,
 * nothing else) against the same backend, over HTTP.
 */

import { Engine } from "../runtime/mod.ts";
import { orca, removeContainers, startServer } from "../tests/harness.ts";
import { freePort } from "../tests/pebble.ts";
import { startListening } from "./http.ts";
import { ensureWrk, type LoadResult, wrk } from "./wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 8);
const DOMAIN = "bench.orca.test";

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, ...(cwd && { cwd }), stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

async function ensureNginx(): Promise<void> {
  if ((await new Deno.Command("sh", { args: ["-c", "command -v nginx"], stdout: "null" }).output()).success) return;
  if (Deno.uid() !== 0) throw new Error("the benchmark needs nginx: sudo apt-get install -y nginx");
  console.error("installing nginx (apt-get)");
  await run("apt-get", ["install", "-y", "-qq", "nginx"]);
}

function nginxConf(dir: string, http: number, https: number, upstream: number): string {
  return `worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${http};
    listen 127.0.0.1:${https} ssl http2;
    server_name ${DOMAIN};
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`;
}

const fmt = (r: LoadResult) =>
  `${r.requestsPerSec.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${
    r.p99Ms.toFixed(2).padStart(6)
  } ms${r.errors ? `  (${r.errors} errors)` : ""}`;

export async function benchProxy(): Promise<string[]> {
  await ensureWrk();
  await ensureNginx();
  const dir = await Deno.makeTempDir({ prefix: "orca-bench-proxy-" });
  await run("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
    ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`, "-subj", `/CN=${DOMAIN}`],
    ...["-addext", `subjectAltName=DNS:${DOMAIN}`],
  ]);
  const server = await startServer(undefined, {}, ["--https-port", "0"]);
  const orcaHttps = Number(/https\s+https:\/\/[^:]+:(\d+)/.exec(server.output())![1]);
  const orcaHttp = Number(new URL(server.httpUrl).port);
  let nginx: Deno.ChildProcess | undefined;
  let floor: { url: string; stop(): Promise<void> } | undefined;
  const floors: string[] = [];
  try {
    await Deno.mkdir(`${dir}/services/bench`, { recursive: true });
    await Deno.copyFile(`${dir}/cert.pem`, `${dir}/services/bench/cert.pem`);
    await Deno.copyFile(`${dir}/key.pem`, `${dir}/services/bench/key.pem`);
    // The backend: Deno.serve in the container (this machine's Deno and libraries, mounted read-only), keep-alive.
    await Deno.writeTextFile(
      `${dir}/backend.ts`,
      `Deno.serve({ hostname: "0.0.0.0", port: 8080, onListen() {} }, () => new Response("hello from the backend\\n"));\n`,
    );
    const volumes = [`${Deno.execPath()}:/deno:ro`, "/lib:/lib:ro", "/lib64:/lib64:ro", `${dir}/backend.ts:/b.ts:ro`];
    await Deno.writeTextFile(
      `${dir}/services/bench/service.toml`,
      `[[service]]\nname = "web"\nimage = "orca-examples/busybox:1"\nport = 8080\ndomain = "${DOMAIN}"\n` +
        `tls = { cert = "cert.pem", key = "key.pem" }\nhttps_redirect = false\n` +
        `volumes = ${JSON.stringify(volumes)}\ncommand = ["/deno", "run", "-A", "/b.ts"]\n` +
        `env = { DENO_DIR = "/tmp/deno", HOME = "/tmp", NO_COLOR = "1" }\n`,
    );
    const deployed = await orca(server, "deploy", dir);
    if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
    // The same replica for both: nginx goes to the port the engine published for it.
    const engine = new Engine();
    const filters = JSON.stringify({ label: ["orca.project=bench", "orca.service=web"] });
    const [container] = await engine.request<{ Ports: { PublicPort?: number }[] }[]>("GET", "/containers/json", {
      query: { filters },
    });
    const upstream = container.Ports.find((p) => p.PublicPort)!.PublicPort!;
    const [nginxHttp, nginxHttps] = [freePort(), freePort()];
    await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConf(dir, nginxHttp, nginxHttps, upstream));
    nginx = new Deno.Command("nginx", {
      args: ["-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: nginxHttp })).close();
        break;
      } catch {
        if (i === 50) {
          throw new Error(`nginx did not start: ${await Deno.readTextFile(`${dir}/error.log`).catch(() => "")}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    // Both answer 200 before anything is measured.
    for (const port of [nginxHttp, orcaHttp]) {
      const out = await run("curl", [
        "-s",
        "-w",
        " %{http_code}",
        "-H",
        `host: ${DOMAIN}`,
        `http://127.0.0.1:${port}/`,
      ]);
      if (!out.endsWith(" 200")) throw new Error(`127.0.0.1:${port} answered: ${out.slice(0, 200)}`);
    }
    // The floor for any proxy on Deno's HTTP server and client (nothing of Orca's in it), over HTTP.
    floor = await startListening("plain_proxy.ts", [String(upstream)]);
    const lines = [`same backend (Deno.serve in a container, keep-alive), wrk ${SECONDS} s per run, 2 threads`, ""];
    const header = "nginx".padEnd(52) + "orca".padEnd(52) + "req/s ratio   p99 ratio";
    for (const scheme of ["http", "https"] as const) {
      lines.push(`${scheme}`, `      ${header}`);
      for (const connections of [16, 64]) {
        const load = (port: number) =>
          wrk(`${scheme}://127.0.0.1:${port}/`, {
            connections,
            seconds: SECONDS,
            threads: 2,
            headers: { Host: DOMAIN },
          });
        const base = await load(scheme === "http" ? nginxHttp : nginxHttps);
        const ours = await load(scheme === "http" ? orcaHttp : orcaHttps);
        lines.push(
          `  c${String(connections).padEnd(3)} ${fmt(base).padEnd(52)}${fmt(ours).padEnd(52)}${
            (ours.requestsPerSec / base.requestsPerSec).toFixed(2)
          }x         ${(ours.p99Ms / base.p99Ms).toFixed(2)}x`,
        );
        if (scheme === "http") {
          const least = await wrk(floor.url, { connections, seconds: SECONDS, threads: 2, headers: { Host: DOMAIN } });
          floors.push(
            `  c${String(connections).padEnd(3)} ${fmt(least)}  ${
              (least.requestsPerSec / base.requestsPerSec).toFixed(2)
            }x nginx's req/s`,
          );
        }
      }
    }
    lines.push(
      "the floor for a proxy on Deno: Deno.serve + fetch and nothing else (bench/plain_proxy.ts), http",
      ...floors,
    );
    return lines;
  } finally {
    try {
      nginx?.kill("SIGQUIT");
      await nginx?.status;
    } catch {
      // gone
    }
    await floor?.stop();
    await server.stop();
    await removeContainers(server.home);
  }
}
