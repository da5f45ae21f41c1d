/**
 * `deno task bench`: a hello edge function served through Orca's proxy, side by
 * side in one run with a plain Deno.serve hello and with workerd serving the
 * same jco-transpiled component; Orca with guests in 1 guest host process, in
 * one per core, and in the server process; plus instantiate-from-compiled per guest kind.
 * Load comes from wrk on loopback, one target at a time.
 */

import { sha256Hex } from "../config/mod.ts";
import { orca, startServer, writeProject } from "../tests/harness.ts";
import { measureInstantiate } from "./instantiate.ts";
import { startWorkerd } from "./workerd/serve.ts";
import { ensureWrk, type LoadResult, wrk } from "./wrk.ts";

const root = new URL("..", import.meta.url).pathname;
const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const connections = Number(Deno.env.get("BENCH_CONNECTIONS") ?? 16);
const guests = {
  c: `${root}examples/services/hello-c/hello.wasm`,
  js: `${root}examples/services/hello-js/hello.wasm`,
  reuse: `${root}tests/fixtures/guests/reuse.wasm`,
};

interface Row {
  target: string;
  result: LoadResult;
}

async function startPlain(): Promise<{ url: string; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `${root}bench/plain_server.ts`, "0"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("plain server did not start");
    text += value;
  }
  const port = /listening (\d+)/.exec(text)![1];
  return {
    url: `http://127.0.0.1:${port}/`,
    async stop() {
      child.kill();
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function transpiledDir(home: string, wasm: string): Promise<string> {
  const hash = await sha256Hex(await Deno.readFile(wasm));
  for await (const v of Deno.readDir(`${home}/cache`)) {
    const dir = `${home}/cache/${v.name}/${hash}`;
    try {
      await Deno.stat(`${dir}/component.js`);
      return dir;
    } catch {
      continue;
    }
  }
  throw new Error(`no transpiled output for ${wasm}`);
}

const fmt = (n: number, digits = 2) => Number.isFinite(n) ? n.toFixed(digits) : "n/a";

export async function benchHttp(): Promise<void> {
  await ensureWrk();
  const rows: Row[] = [];
  const load = async (target: string, url: string) => {
    await fetch(url).then((r) => r.body?.cancel()); // warm up
    await wrk(url, { connections, seconds: 1 });
    const result = await wrk(url, { connections, seconds });
    rows.push({ target, result });
    console.error(`  ${target}: ${fmt(result.requestsPerSec, 0)} req/s`);
  };

  console.error(`load: wrk, 1 thread, ${connections} connections, ${seconds}s per target, loopback`);
  const plain = await startPlain();
  await load("plain Deno.serve hello", plain.url);
  await plain.stop();

  // Guests in 1 guest host, in one per core, and in the server process itself (--workers 0).
  const cores = navigator.hardwareConcurrency;
  let dirs: { c: string; js: string; reuse: string } | undefined;
  for (const workers of [1, cores, 0]) {
    const server = await startServer(undefined, {}, ["--workers", String(workers)]);
    const label = workers === 0 ? "in-process" : `${workers} worker${workers === 1 ? "" : "s"}`;
    const deployed = await orca(server, "deploy", `${root}examples`);
    if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
    await load(`orca (${label}) -> C guest (WAGI)`, `${server.httpUrl}/c/bench`);
    await load(`orca (${label}) -> JS guest (wasi:http)`, `${server.httpUrl}/js/bench`);
    // A JS guest exporting incomingHandler (jco's http-hello-world style), isolated and reused.
    const reuse = await writeProject({
      bench: ["isolated", "reuse"].map((mode) =>
        `[[service]]\nname = "js-${mode}"\nmodule = "${guests.reuse}"\ntriggers = ["http:/js-${mode}/*"]\n` +
        `[service.wasm]\ninstance = "${mode}"\n`
      ).join("\n"),
    });
    const more = await orca(server, "deploy", reuse);
    if (more.code !== 0) throw new Error(`deploy failed: ${more.stderr}`);
    await load(`orca (${label}) -> JS handler, isolated`, `${server.httpUrl}/js-isolated/bench`);
    await load(`orca (${label}) -> JS handler, reused`, `${server.httpUrl}/js-reuse/bench`);
    dirs ??= {
      c: await transpiledDir(server.home, guests.c),
      js: await transpiledDir(server.home, guests.js),
      reuse: await transpiledDir(server.home, guests.reuse),
    };
    await server.stop();
  }

  const peers = [
    ["workerd -> C guest (WAGI)", dirs!.c, "wagi", false],
    ["workerd -> JS guest (wasi:http)", dirs!.js, "http", false],
    ["workerd -> JS handler, isolated", dirs!.reuse, "http", false],
    ["workerd -> JS handler, one instance", dirs!.reuse, "http", true],
  ] as const;
  for (const [label, dir, kind, shared] of peers) {
    try {
      const w = await startWorkerd({ transpiledDir: dir, port: freePort(), kind, shared });
      try {
        await load(label, `${w.url}/bench`);
      } finally {
        await w.close();
      }
    } catch (err) {
      console.error(`  ${label}: could not run (${(err as Error).message.split("\n")[0]})`);
    }
  }

  const cacheDir = await Deno.makeTempDir({ prefix: "orca-bench-cache-" });
  const inst = [
    await measureInstantiate("C command (hello-c)", guests.c, 300, cacheDir),
    await measureInstantiate("JS componentize-js (hello-js)", guests.js, 60, cacheDir),
  ];
  await Deno.remove(cacheDir, { recursive: true });

  const by = (prefix: string) => rows.find((r) => r.target.startsWith(prefix))?.result;
  const base = by("plain")!;
  console.log(`\nHTTP hello, ${connections} connections, ${seconds}s each (same machine, one run)\n`);
  console.log(
    "target                                         req/s     p50 ms   p99 ms   errors   vs plain Deno.serve   vs workerd (same component)",
  );
  for (const { target, result } of rows) {
    const peer = target.includes("C guest")
      ? by("workerd -> C")
      : target.includes("JS guest")
      ? by("workerd -> JS guest")
      : target.includes("JS handler, isolated")
      ? by("workerd -> JS handler, isolated")
      : target.includes("JS handler, reused")
      ? by("workerd -> JS handler, one instance")
      : undefined;
    const vsWorkerd = target.startsWith("orca") && peer ? `${fmt(result.requestsPerSec / peer.requestsPerSec)}x` : "";
    console.log(
      `${target.padEnd(46)} ${fmt(result.requestsPerSec, 0).padStart(7)}  ${fmt(result.p50Ms).padStart(7)}  ${
        fmt(result.p99Ms).padStart(7)
      }  ${String(result.errors).padStart(6)}   ${
        (fmt(result.requestsPerSec / base.requestsPerSec, 3) + "x").padStart(19)
      }   ${vsWorkerd}`,
    );
  }
  console.log("\ninstantiate from compiled (per request: each request gets a fresh instance)\n");
  console.log("guest                              kind      p50 ms   p99 ms   compile ms");
  for (const r of inst) {
    console.log(
      `${r.guest.padEnd(34)} ${r.kind.padEnd(8)} ${fmt(r.p50Ms, 3).padStart(7)}  ${fmt(r.p99Ms, 3).padStart(7)}   ${
        fmt(r.compileMs, 0).padStart(9)
      }`,
    );
  }
}

if (import.meta.main) await benchHttp();
