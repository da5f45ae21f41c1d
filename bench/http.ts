/**
 * `deno task bench`: a hello edge function served through Orca's proxy, side by
 * side in one run with a plain Deno.serve hello and with workerd serving the
 * same jco-transpiled component; Orca with guests in 1 guest host process, in
 * one per core, and in the server process; plus instantiate-from-compiled per guest kind.
 * Guests: C (WAGI), a JavaScript FetchEvent listener (hello-js), a JavaScript
 * incomingHandler (jco's http-hello-world style) and a hand-written WAT
 * wasi:http handler, the last two isolated (reset per request) and reused.
 * Load comes from wrk on loopback, one target at a time, at 16 and 64 connections.
 */

import { transpile } from "../runtime/wasm/compile.ts";
import { orca, startServer, writeProject } from "../tests/harness.ts";
import { measureInstantiate } from "./instantiate.ts";
import { buildJcoExamples } from "./jco_examples.ts";
import { startWorkerd } from "./workerd/serve.ts";
import { ensureWrk, type LoadResult, wrk } from "./wrk.ts";

const root = new URL("..", import.meta.url).pathname;
const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
/** Connection counts each target is loaded with, in turn (the first one is the one ratios compare). */
const connections = (Deno.env.get("BENCH_CONNECTIONS") ?? "16,64").split(",").map(Number);
const guests = {
  c: `${root}examples/services/hello-c/hello.wasm`,
  js: `${root}examples/services/hello-js/hello.wasm`,
  reuse: `${root}tests/fixtures/guests/reuse.wasm`,
  wat: `${root}tests/fixtures/guests/hello.http.wasm`,
};

interface Row {
  target: string;
  /** One result per connection count. */
  results: LoadResult[];
}

/** Runs `bench/<script> 0 ...args` (a server that prints `listening <port>`); resolves once it listens. */
export async function startListening(
  script: string,
  args: string[] = [],
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `${root}bench/${script}`, "0", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} did not start`);
    text += value;
  }
  const port = /listening (\d+)/.exec(text)![1];
  return {
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid,
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

/**
 * jco's output for `wasm` as jco publishes it, in a folder of its own: what a workerd user serves. Orca's own cache
 * holds the glue patched for Orca's runtime (lean_glue.ts), which assumes Orca's one call per instance at a time.
 */
async function publishedDir(wasm: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "orca-bench-jco-" });
  for (const [name, content] of (await transpile(await Deno.readFile(wasm))).files) {
    await Deno.writeFile(`${dir}/${name}`, content);
  }
  return dir;
}

/** Runs of one target averaged per connection count: mean req/s, the worse p50 and p99, errors summed. */
function averaged(runs: LoadResult[][]): LoadResult[] {
  return runs[0].map((_, i) => ({
    requestsPerSec: runs.reduce((n, r) => n + r[i].requestsPerSec, 0) / runs.length,
    p50Ms: Math.max(...runs.map((r) => r[i].p50Ms)),
    p99Ms: Math.max(...runs.map((r) => r[i].p99Ms)),
    errors: runs.reduce((n, r) => n + r[i].errors, 0),
  }));
}

const fmt = (n: number, digits = 2) => Number.isFinite(n) ? n.toFixed(digits) : "n/a";

export async function benchHttp(): Promise<void> {
  await ensureWrk();
  const jco = await buildJcoExamples(Deno.env.get("BENCH_JCO"));
  const rows: Row[] = [];
  const measure = async (url: string) => {
    await fetch(url).then((r) => r.body?.cancel()); // warm up
    await wrk(url, { connections: connections[0], seconds: 1 });
    const results: LoadResult[] = [];
    for (const c of connections) results.push(await wrk(url, { connections: c, seconds }));
    return results;
  };
  const show = (target: string, results: LoadResult[]) =>
    console.error(`  ${target}: ${results.map((r) => fmt(r.requestsPerSec, 0)).join(" / ")} req/s`);
  const load = async (target: string, url: string) => {
    const results = await measure(url);
    rows.push({ target, results });
    show(target, results);
  };
  console.error(`load: wrk, 1 thread, ${connections.join(" then ")} connections, ${seconds}s each, loopback`);
  // The baselines (plain Deno.serve, workerd) run before and after Orca's rows, and their two runs are averaged: this
  // machine's speed drifts over the minutes Orca's rows take, and a baseline measured at one end only would carry it.
  const dirs = {
    c: await publishedDir(guests.c),
    js: await publishedDir(guests.js),
    reuse: await publishedDir(guests.reuse),
    wat: await publishedDir(guests.wat),
    ...(jco && { jcoHello: await publishedDir(jco.helloWorld), jcoFetch: await publishedDir(jco.fetchHandler) }),
  };
  const peers = [
    ["workerd -> C guest (WAGI)", dirs.c, "wagi", false],
    ["workerd -> JS guest (wasi:http)", dirs.js, "http", false],
    ["workerd -> JS handler, isolated", dirs.reuse, "http", false],
    ["workerd -> JS handler, one instance", dirs.reuse, "http", true],
    ["workerd -> WAT handler, one instance", dirs.wat, "http", true],
  ] as [string, string, "http" | "wagi", boolean][];
  if (dirs.jcoHello) peers.push(["workerd -> jco http-hello-world, one instance", dirs.jcoHello, "http", true]);
  if (dirs.jcoFetch) {
    peers.push(["workerd -> jco fetch-handler (an instance per request)", dirs.jcoFetch, "http", false]);
  }
  const baselines = new Map<string, LoadResult[][]>();
  const baseline = async (target: string, url: string) => {
    const results = await measure(url);
    baselines.set(target, [...baselines.get(target) ?? [], results]);
    show(`${target} (run ${baselines.get(target)!.length})`, results);
  };
  const runBaselines = async () => {
    const plain = await startListening("plain_server.ts");
    await baseline("plain Deno.serve hello", plain.url);
    await plain.stop();
    for (const [label, dir, kind, shared] of peers) {
      try {
        const w = await startWorkerd({ transpiledDir: dir, port: freePort(), kind, shared });
        try {
          await baseline(label, `${w.url}/bench`);
        } finally {
          await w.close();
        }
      } catch (err) {
        console.error(`  ${label}: could not run (${(err as Error).message.split("\n")[0]})`);
      }
    }
  };
  await runBaselines();

  // Guests in 1 guest host, in one per core, and in the server process itself (--workers 0).
  const cores = navigator.hardwareConcurrency;
  for (const workers of [1, cores, 0]) {
    const server = await startServer(undefined, {}, ["--workers", String(workers)]);
    const label = workers === 0 ? "in-process" : `${workers} worker${workers === 1 ? "" : "s"}`;
    const deployed = await orca(server, "deploy", `${root}examples`);
    if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
    await load(`orca (${label}) -> C guest (WAGI)`, `${server.httpUrl}/c/bench`);
    await load(`orca (${label}) -> JS guest (wasi:http)`, `${server.httpUrl}/js/bench`);
    // A JS guest exporting incomingHandler (jco's http-hello-world style) and the WAT handler, isolated and reused.
    const handlers: [string, string][] = [["js", guests.reuse], ["wat", guests.wat]];
    if (jco) handlers.push(["jco-hello", jco.helloWorld], ["jco-fetch", jco.fetchHandler]);
    const reuse = await writeProject({
      bench: handlers.flatMap(([name, module]) =>
        (name === "jco-fetch" ? ["isolated"] : ["isolated", "reuse"]).map((mode) =>
          `[[service]]\nname = "${name}-${mode}"\nmodule = "${module}"\ntriggers = ["http:/${name}-${mode}/*"]\n` +
          `[service.wasm]\ninstance = "${mode}"\n`
        )
      ).join("\n"),
    });
    const more = await orca(server, "deploy", reuse);
    if (more.code !== 0) throw new Error(`deploy failed: ${more.stderr}`);
    await load(`orca (${label}) -> JS handler, isolated`, `${server.httpUrl}/js-isolated/bench`);
    await load(`orca (${label}) -> JS handler, reused`, `${server.httpUrl}/js-reuse/bench`);
    await load(`orca (${label}) -> WAT handler, isolated`, `${server.httpUrl}/wat-isolated/bench`);
    await load(`orca (${label}) -> WAT handler, reused`, `${server.httpUrl}/wat-reuse/bench`);
    if (jco) {
      await load(`orca (${label}) -> jco http-hello-world, isolated`, `${server.httpUrl}/jco-hello-isolated/bench`);
      await load(`orca (${label}) -> jco http-hello-world, reused`, `${server.httpUrl}/jco-hello-reuse/bench`);
      await load(`orca (${label}) -> jco fetch-handler, isolated`, `${server.httpUrl}/jco-fetch-isolated/bench`);
    }
    await server.stop();
  }

  await runBaselines();
  for (const [target, runs] of baselines) rows.push({ target, results: averaged(runs) });
  rows.sort((a, b) => (a.target.startsWith("plain") ? -1 : 0) - (b.target.startsWith("plain") ? -1 : 0));

  for (const dir of Object.values(dirs)) await Deno.remove(dir, { recursive: true });

  const cacheDir = await Deno.makeTempDir({ prefix: "orca-bench-cache-" });
  const inst = [
    await measureInstantiate("C command (hello-c)", guests.c, 300, cacheDir),
    await measureInstantiate("JS componentize-js (hello-js)", guests.js, 60, cacheDir),
  ];
  await Deno.remove(cacheDir, { recursive: true });

  const by = (prefix: string) => rows.find((r) => r.target.startsWith(prefix))?.results[0];
  const base = by("plain")!;
  const c = connections;
  console.log(`\nHTTP hello, ${c.join(" and ")} connections, ${seconds}s each (same machine, one run)\n`);
  console.log(
    "target".padEnd(56) + c.map((n) => `  req/s c${n}`.padStart(12) + `  p99 ms c${n}`.padStart(13)).join("") +
      `   vs plain (c${c[0]})   vs workerd (same component, c${c[0]})`,
  );
  for (const { target, results } of rows) {
    const peer = target.includes("C guest")
      ? by("workerd -> C")
      : target.includes("JS guest")
      ? by("workerd -> JS guest")
      : target.includes("JS handler")
      ? by("workerd -> JS handler, one instance")
      : target.includes("WAT handler")
      ? by("workerd -> WAT handler, one instance")
      : target.includes("jco http-hello-world")
      ? by("workerd -> jco http-hello-world")
      : target.includes("jco fetch-handler")
      ? by("workerd -> jco fetch-handler")
      : undefined;
    const first = results[0];
    const vsWorkerd = target.startsWith("orca") && peer ? `${fmt(first.requestsPerSec / peer.requestsPerSec)}x` : "";
    const errors = results.reduce((n, r) => n + r.errors, 0);
    console.log(
      target.padEnd(56) +
        results.map((r) => fmt(r.requestsPerSec, 0).padStart(12) + fmt(r.p99Ms).padStart(13)).join("") +
        `${(fmt(first.requestsPerSec / base.requestsPerSec, 3) + "x").padStart(18)}   ${vsWorkerd.padStart(8)}` +
        (errors > 0 ? `   (${errors} errors)` : ""),
    );
  }
  console.log(
    "\nworkerd runs one instance for every request (as Workers users run it), except the rows marked isolated and " +
      "the FetchEvent guest (its engine answers once per instance). Orca's isolated rows reset one instance per " +
      "request to its post-init state (snapshot reset); its JS handler rows compare with workerd's one instance. " +
      "workerd runs jco's glue as jco publishes it; Orca runs the same glue with its own call path for WASI 0.2 " +
      "components (runtime/wasm/lean_glue.ts), which relies on Orca entering an instance once at a time. " +
      "plain Deno.serve and workerd ran before and after Orca's rows: their figures are the mean of both runs " +
      "(this machine's speed drifts), their p99 the worse.",
  );
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
