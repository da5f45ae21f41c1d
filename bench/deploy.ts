/**
 * Deploy to first response, side by side: a Wasm service (C guest, WAGI) vs a
 * container service (busybox httpd) on a real Docker engine, both through the
 * API and the proxy of one real server.
 */

import { sha256Hex } from "../config/mod.ts";
import { getWithHost, removeContainers, startServer } from "../tests/harness.ts";

const root = new URL("..", import.meta.url).pathname;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchDeploy(rounds: number): Promise<string[]> {
  const server = await startServer();
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.apiUrl}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${server.token}`, ...init.headers },
    });
  const wasm = await Deno.readFile(`${root}examples/services/hello-c/hello.wasm`);
  const hash = await sha256Hex(wasm);
  await (await api(`/modules/${hash}`, { method: "PUT", body: wasm })).body?.cancel();
  const times: Record<string, number[]> = { wasm: [], container: [] };
  const lines: string[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      for (const kind of ["wasm", "container"] as const) {
        const project = `b${kind[0]}${i}${crypto.randomUUID().slice(0, 4)}`;
        const domain = `${project}.localhost`;
        const service = kind === "wasm" ? { name: "hello", module: "hello.wasm", module_hash: hash, domain } : {
          name: "hello",
          image: "orca-examples/busybox:1",
          command: ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"],
          port: 8080,
          domain,
        };
        const t0 = performance.now();
        const res = await api("/deploy", {
          method: "POST",
          body: JSON.stringify({ projects: { [project]: [service] } }),
        });
        if (!res.ok) throw new Error(`${kind} deploy failed: ${await res.text()}`);
        await res.body?.cancel();
        while ((await getWithHost(server.httpUrl, "/", domain)).status !== 200) {
          await new Promise((r) => setTimeout(r, 5));
        }
        times[kind].push(performance.now() - t0);
        await (await api(`/services/${project}/hello`, { method: "DELETE" })).body?.cancel();
      }
    }
    const w = median(times.wasm), c = median(times.container);
    lines.push(
      `deploy -> first response (median of ${rounds}): Wasm ${w.toFixed(1)} ms, container ${
        c.toFixed(0)
      } ms (create+start+ready); container/Wasm ${(c / w).toFixed(0)}x`,
    );
  } finally {
    await server.stop();
    await removeContainers(server.home);
  }
  return lines;
}

if (import.meta.main) {
  for (const line of await benchDeploy(Number(Deno.env.get("BENCH_ROUNDS") ?? 5))) console.log(line);
}
