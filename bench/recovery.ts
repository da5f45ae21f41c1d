/**
 * Recovery, side by side: a container whose process crashes (a CGI script kills its web server; the container's
 * shell exits 3), restarted by Orca's watchdog vs by Docker's own `--restart always` (what a Docker user runs) —
 * crash to serving again, and the requests that failed meanwhile, with one replica and (Orca) with two. Then a
 * canary that fails half its requests: deploy to rolled back, and the client-visible errors.
 */

import { sha256Hex } from "../config/mod.ts";
import { Engine } from "../runtime/mod.ts";
import { get, getWithHost, removeContainers, startServer } from "../tests/harness.ts";

const root = new URL("..", import.meta.url).pathname;
const IMAGE = "orca-examples/busybox:1";
/** sh (PID 1) runs httpd; GET /cgi-bin/crash kills httpd, and sh exits 3. */
const COMMAND = [
  "/bin/sh",
  "-c",
  "mkdir -p /www/cgi-bin; printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho bye\\n" +
  "/bin/busybox killall -9 httpd\\n' > /www/cgi-bin/crash; /bin/busybox chmod +x /www/cgi-bin/crash; " +
  "httpd -f -p 8080 -h /www; exit 3",
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Crashes it with `crash`, then asks `ask` until a 200: the time it took and the failures on the way. */
async function recover(
  crash: () => Promise<unknown>,
  ask: () => Promise<number>,
): Promise<{ ms: number; failed: number }> {
  const t0 = performance.now();
  await crash().catch(() => {});
  let failed = 0;
  for (;;) {
    const status = await ask().catch(() => 0);
    if (status === 200) return { ms: performance.now() - t0, failed };
    if (performance.now() - t0 > 120_000) throw new Error("not serving again after 120 s");
    failed++;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function docker(...args: string[]): Promise<string> {
  const out = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

export async function benchRecovery(rounds: number): Promise<string[]> {
  const lines: string[] = [];
  const engine = new Engine();
  // Docker's restart policy, as a Docker user runs a service.
  const plain: number[] = [], plainFailed: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const id = await docker("run", "-d", "--restart", "always", "-p", "127.0.0.1::8080", IMAGE, ...COMMAND);
    try {
      // A restart may publish the port anew: asked of the engine again after each failure (as fast as Orca's answers).
      let known: string | undefined;
      const url = async () => {
        if (known) return known;
        const info = await engine.request<
          { NetworkSettings: { Ports: Record<string, { HostPort: string }[] | null> } }
        >(
          "GET",
          `/containers/${id}/json`,
        );
        return known = `http://127.0.0.1:${info.NetworkSettings.Ports["8080/tcp"]?.[0]?.HostPort ?? 1}`;
      };
      const ask = async () => {
        const status = await get(`${await url()}/`).then((r) => r.status, () => 0);
        if (status !== 200) known = undefined;
        return status;
      };
      while ((await ask().catch(() => 0)) !== 200) await new Promise((r) => setTimeout(r, 20));
      const r = await recover(async () => get(`${await url()}/cgi-bin/crash`), ask);
      plain.push(r.ms);
      plainFailed.push(r.failed);
    } finally {
      await docker("rm", "-f", id);
    }
  }

  const server = await startServer();
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.apiUrl}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${server.token}` } });
  try {
    const orca = { one: [] as number[], oneFailed: [] as number[], twoFailed: [] as number[], two: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      for (const replicas of [1, 2]) {
        const project = `rec${replicas}${i}${crypto.randomUUID().slice(0, 4)}`;
        const domain = `${project}.localhost`;
        const service = { name: "web", image: IMAGE, command: COMMAND, port: 8080, domain, replicas };
        const res = await api("/deploy", {
          method: "POST",
          body: JSON.stringify({ projects: { [project]: [service] } }),
        });
        if (!res.ok) throw new Error(`deploy failed: ${await res.text()}`);
        await res.body?.cancel();
        // The crash goes to replica 1's own port (through the proxy it would go to the next in turn).
        const name = `${project}-web-1`;
        const port = (await docker("port", name, "8080/tcp")).split(":").pop();
        const ask = async () => (await getWithHost(server.httpUrl, "/", domain)).status;
        if (replicas === 1) {
          const r = await recover(() => get(`http://127.0.0.1:${port}/cgi-bin/crash`), ask);
          orca.one.push(r.ms);
          orca.oneFailed.push(r.failed);
        } else {
          // Two replicas: requests through the proxy meanwhile, until the crashed one has started again and answers.
          const before = await docker("inspect", "-f", "{{.State.StartedAt}}", name);
          const t0 = performance.now();
          await get(`http://127.0.0.1:${port}/cgi-bin/crash`).catch(() => {});
          let failed = 0;
          for (;;) {
            if (performance.now() - t0 > 120_000) throw new Error("replica 1 not back after 120 s");
            if ((await ask().catch(() => 0)) !== 200) failed++;
            if ((await docker("inspect", "-f", "{{.State.StartedAt}}", name)) === before) continue;
            const now = (await docker("port", name, "8080/tcp").catch(() => "")).split(":").pop();
            if (now && (await get(`http://127.0.0.1:${now}/`).then((x) => x.status, () => 0)) === 200) break;
          }
          orca.two.push(performance.now() - t0);
          orca.twoFailed.push(failed);
        }
        await (await api(`/services/${project}/web`, { method: "DELETE" })).body?.cancel();
      }
    }
    const d = median(plain), o = median(orca.one);
    lines.push(
      `container crash -> serving again (median of ${rounds}; one replica, asked every 10 ms): Docker --restart ` +
        `always ${d.toFixed(0)} ms (${median(plainFailed)} failed requests); Orca watchdog ${o.toFixed(0)} ms ` +
        `(${median(orca.oneFailed)} failed; readiness checked before traffic); Orca/Docker ${(o / d).toFixed(2)}x`,
    );
    lines.push(
      `  with 2 replicas on Orca: crashed one back in ${median(orca.two).toFixed(0)} ms, ` +
        `${Math.max(...orca.twoFailed)} failed requests at most (the other answered meanwhile)`,
    );

    // A canary failing half its requests, under sequential load: deploy to rolled back.
    const stable = await Deno.readFile(`${root}tests/fixtures/guests/version1.wasm`);
    const flaky = await Deno.readFile(`${root}tests/fixtures/guests/flaky.wasm`);
    for (const bytes of [stable, flaky]) {
      await (await api(`/modules/${await sha256Hex(bytes)}`, { method: "PUT", body: bytes })).body?.cancel();
    }
    const rollout = { strategy: "canary", canary_percent: 10, analysis_secs: 60, max_error_rate: 0.02 };
    const spec = async (bytes: Uint8Array) => ({
      name: "api",
      module: "x.wasm",
      module_hash: await sha256Hex(bytes),
      triggers: ["http:/canary"],
      rollout,
    });
    const deploy = async (bytes: Uint8Array) => {
      const r = await api("/deploy", {
        method: "POST",
        body: JSON.stringify({ projects: { can: [await spec(bytes)] } }),
      });
      if (!r.ok) throw new Error(`deploy failed: ${await r.text()}`);
      await r.body?.cancel();
    };
    await deploy(stable);
    let running = true, total = 0, errors = 0;
    const load = (async () => {
      while (running) {
        const r = await get(`${server.httpUrl}/canary`).catch(() => ({ status: 0 }));
        total++;
        if (r.status !== 200) errors++;
      }
    })();
    const t0 = performance.now();
    await deploy(flaky);
    for (;;) {
      const status = await (await api("/services/can/api/rollout")).json();
      if (status.state !== "analysing") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const ms = performance.now() - t0;
    running = false;
    await load;
    lines.push(
      `bad canary (50% 5xx, 10% share) -> rolled back: ${ms.toFixed(0)} ms from the deploy request (compile ` +
        `and warm included); ${errors} of ${total} requests failed (${(errors / total * 100).toFixed(2)}%)`,
    );
  } finally {
    await server.stop();
    await removeContainers(server.home);
  }
  return lines;
}

if (import.meta.main) {
  if (!(await new Engine().ping())) throw new Error("no Docker engine: sudo bash scripts/docker_engine.sh");
  for (const line of await benchRecovery(Number(Deno.env.get("BENCH_ROUNDS") ?? 3))) console.log(line);
}
