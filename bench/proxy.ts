/**
 * `deno task bench proxy`: Orca's proxy against nginx (Debian's, as its users
 * run it: a plain reverse proxy with upstream keep-alive, `worker_processes
 * auto`), all in front of the same container replica (a Deno.serve hello
 * with keep-alive: busybox with this machine's Deno mounted), on this
 * machine, over HTTP and HTTPS (the same certificate), with wrk at 16 and 64
 * connections. nginx runs twice: to the port the engine published (how nginx
 * on a host is put in front of a container) and to the container's address
 * on its network (how Orca goes, with no port proxy of the engine's on the
 * way). Prints req/s and p50/p99 of each, and Orca's ratios to both (goal:
 * Orca >= 0.8x nginx's req/s, p99 <= 1.5x). Then the floor for a proxy made
 * of Deno.serve and Orca's upstream client (bench/plain_proxy.ts, nothing
 * else) to the container's address, over HTTP.
 */

import { Engine } from "../runtime/mod.ts";
import { orca, removeContainers, startServer } from "../tests/harness.ts";
import { freePort } from "../tests/pebble.ts";
import { startListening } from "./http.ts";
import { measured } from "./cpu.ts";
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

/** nginx's two servers: one goes to the port the engine published, the other to the container's own address. */
interface NginxPorts {
  http: number;
  https: number;
  directHttp: number;
  directHttps: number;
}

function nginxConf(dir: string, ports: NginxPorts, published: number, direct: string): string {
  const server = (http: number, https: number, upstream: string) => `
  server {
    listen 127.0.0.1:${http};
    listen 127.0.0.1:${https} ssl http2;
    server_name ${DOMAIN};
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    location / {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }`;
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
  upstream published { server 127.0.0.1:${published}; keepalive 64; }
  upstream direct { server ${direct}; keepalive 64; }${server(ports.http, ports.https, "published")}${
    server(ports.directHttp, ports.directHttps, "direct")
  }
}
`;
}

/** A load's result, with the CPU the proxy's processes and the whole machine spent per request meanwhile. */
type Measured = LoadResult & { proxyUs: number; machineUs: number };

const fmt = (r: Measured) =>
  `${r.requestsPerSec.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${
    r.p99Ms.toFixed(2).padStart(6)
  } ms  cpu/request: proxy ${r.proxyUs.toFixed(0).padStart(3)} us, machine ${r.machineUs.toFixed(0).padStart(3)} us${
    r.errors ? `  (${r.errors} errors)` : ""
  }`;

/** Runs wrk, measuring the CPU `proxy` (its process, and its workers with `children`) and the machine use. */
async function load(
  url: string,
  proxy: { pid: number; children?: boolean },
  connections: number,
): Promise<Measured> {
  const { result, processSeconds, machineSeconds } = await measured(
    [proxy],
    () => wrk(url, { connections, seconds: SECONDS, threads: 2, headers: { Host: DOMAIN } }),
  );
  const requests = result.requestsPerSec * SECONDS;
  return { ...result, proxyUs: processSeconds * 1e6 / requests, machineUs: machineSeconds * 1e6 / requests };
}

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
  let floor: { url: string; pid: number; stop(): Promise<void> } | undefined;
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
    // The same replica for all: nginx goes to the port the engine published for it (through the engine's port
    // proxy, as nginx on the host is set up in front of a container), and to its address on its network (as Orca
    // does).
    const engine = new Engine();
    const filters = JSON.stringify({ label: ["orca.project=bench", "orca.service=web"] });
    const [container] = await engine.request<
      { Ports: { PublicPort?: number }[]; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]
    >("GET", "/containers/json", { query: { filters } });
    const upstream = container.Ports.find((p) => p.PublicPort)!.PublicPort!;
    const direct = `${Object.values(container.NetworkSettings.Networks)[0].IPAddress}:8080`;
    const ports = { http: freePort(), https: freePort(), directHttp: freePort(), directHttps: freePort() };
    const nginxHttp = ports.http;
    await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConf(dir, ports, upstream, direct));
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
    // The floor for any proxy on Deno's HTTP server and Orca's client (nothing else of Orca's), over HTTP.
    floor = await startListening("plain_proxy.ts", [direct]);
    const lines = [
      `same backend (Deno.serve in a container, keep-alive), wrk ${SECONDS} s per run, 2 threads; ratios: Orca / nginx`,
      "(nginx -> port: through the port the engine published; nginx -> address: the container's own, as Orca goes)",
      "cpu/request: of the proxy's processes (nginx: master and workers, not the engine's port proxy) and of the",
      "whole machine (wrk, the backend, the kernel included)",
    ];
    const ratio = (ours: LoadResult, base: LoadResult) =>
      `req/s ${(ours.requestsPerSec / base.requestsPerSec).toFixed(2)}x  p99 ${(ours.p99Ms / base.p99Ms).toFixed(2)}x`;
    const nginxPid = { pid: nginx.pid, children: true };
    for (const scheme of ["http", "https"] as const) {
      for (const connections of [16, 64]) {
        const https = scheme === "https";
        const at = (port: number) => `${scheme}://127.0.0.1:${port}/`;
        const viaPort = await load(at(https ? ports.https : ports.http), nginxPid, connections);
        const viaAddress = await load(at(https ? ports.directHttps : ports.directHttp), nginxPid, connections);
        const ours = await load(at(https ? orcaHttps : orcaHttp), server, connections);
        lines.push(
          "",
          `${scheme} c${connections}`,
          `  nginx -> port     ${fmt(viaPort)}`,
          `  nginx -> address  ${fmt(viaAddress)}`,
          `  orca              ${fmt(ours)}`,
          `  orca / nginx -> port     ${ratio(ours, viaPort)}`,
          `  orca / nginx -> address  ${ratio(ours, viaAddress)}`,
        );
        if (!https) {
          const least = await load(floor.url, floor, connections);
          // What the rest of the machine (wrk, backend, kernel) spends per request around nginx, plus the floor's
          // own CPU, bounds any proxy made like the floor on this machine, on however many threads.
          const ceiling = navigator.hardwareConcurrency * 1e6 /
            (least.proxyUs + viaAddress.machineUs - viaAddress.proxyUs);
          floors.push(
            `  c${String(connections).padEnd(3)} ${fmt(least)}  ${
              (least.requestsPerSec / viaAddress.requestsPerSec).toFixed(2)
            }x nginx -> address's req/s`,
            `       at most ~${
              ceiling.toFixed(0)
            } req/s on ${navigator.hardwareConcurrency} cores on any number of threads ` +
              `(${(ceiling / viaAddress.requestsPerSec).toFixed(2)}x nginx -> address)`,
          );
        }
      }
    }
    lines.push(
      "",
      "the floor for a proxy on Deno: Deno.serve + runtime/h1.ts to the address, nothing else (bench/plain_proxy.ts)",
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
