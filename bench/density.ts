/**
 * Density: the resident memory of the server and its guest host processes
 * with 1,000 idle Wasm services deployed (each scaled to zero), per service,
 * against their own baseline in the same run.
 */

import { sha256Hex } from "../config/mod.ts";
import { get, startServer } from "../tests/harness.ts";

const root = new URL("..", import.meta.url).pathname;

async function ownRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Resident memory of `pid` and every process under it (the server and its guest hosts). */
async function rss(pid: number): Promise<number> {
  const children = new Map<number, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...children.get(ppid) ?? [], Number(entry.name)]);
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  for (const queue = [pid]; queue.length > 0;) {
    const next = queue.pop()!;
    total += await ownRss(next).catch(() => 0);
    queue.push(...children.get(next) ?? []);
  }
  return total;
}

export async function benchDensity(count = 1000): Promise<string[]> {
  const server = await startServer(undefined, {}, ["--idle-ms", "1000"]);
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.apiUrl}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${server.token}`, ...init.headers },
    });
  try {
    const wasm = await Deno.readFile(`${root}examples/services/hello-c/hello.wasm`);
    const hash = await sha256Hex(wasm);
    await (await api(`/modules/${hash}`, { method: "PUT", body: wasm })).body?.cancel();
    // Warm the server (one service, one request) so the baseline includes the runtime itself.
    const one = { name: "warm", module: "hello.wasm", module_hash: hash, triggers: ["http:/warm"] };
    await (await api("/deploy", { method: "POST", body: JSON.stringify({ projects: { warm: [one] } }) })).body
      ?.cancel();
    await get(`${server.httpUrl}/warm`);
    await new Promise((r) => setTimeout(r, 3000)); // let it go idle
    const before = await rss(server.pid);
    const services = Array.from({ length: count }, (_, i) => ({
      name: `s${i}`,
      module: "hello.wasm",
      module_hash: hash,
      triggers: [`http:/s${i}/*`],
    }));
    const t0 = performance.now();
    const res = await api("/deploy", { method: "POST", body: JSON.stringify({ projects: { dense: services } }) });
    if (!res.ok) throw new Error(`deploy failed: ${await res.text()}`);
    await res.body?.cancel();
    const deployMs = performance.now() - t0;
    const busy = await rss(server.pid);
    // Wait until every service has scaled to zero.
    for (let i = 0; i < 100; i++) {
      const { services: st } = await (await api("/services")).json();
      if (st.every((s: { instances: number }) => s.instances === 0)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = await rss(server.pid);
    const check = await get(`${server.httpUrl}/s${count - 1}/x`);
    const perService = (after - before) / count / 2 ** 20;
    return [
      `density: ${count} Wasm services deployed in ${deployMs.toFixed(0)} ms; RSS ${
        (before / 2 ** 20).toFixed(0)
      } MB before, ` +
      `${(busy / 2 ** 20).toFixed(0)} MB with instances pre-made, ${(after / 2 ** 20).toFixed(0)} MB once idle ` +
      `(scaled to zero): ${
        perService.toFixed(2)
      } MB per idle service (goal <= 2 MB); the last one still answers ${check.status}`,
    ];
  } finally {
    await server.stop();
  }
}

if (import.meta.main) {
  for (const line of await benchDensity(Number(Deno.env.get("BENCH_SERVICES") ?? 1000))) console.log(line);
}
