/**
 * Serves a jco-transpiled component from workerd (the npm `workerd` binary,
 * offline) for side-by-side benchmarks: the same glue JS and core modules,
 * preview2-shim's browser flavour for WASI, and a fresh instance per request or
 * one instance for every request (`shared`, as Workers users run it).
 *
 * The glue may be transpiled with asyncMode "jspi": workerd's V8 has
 * WebAssembly.Suspending/promising on by default (no flag needed). Core
 * modules are embedded as `wasm` modules, so workerd compiles them at load and
 * the glue gets WebAssembly.Module objects (it may not compile bytes itself).
 *
 * Try it: deno run -A bench/workerd/serve.ts <transpiledDir> <http|wagi> [port] [jsFile]
 */

const root = new URL("../../", import.meta.url).pathname;
const shimDir = `${root}node_modules/@bytecodealliance/preview2-shim/dist/browser`;
const shimEntries = ["cli.js", "io.js", "clocks.js", "random.js", "filesystem.js", "sockets.js", "http.js"];
const debugGate = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";

export interface Workerd {
  url: string;
  close(): Promise<void>;
}

export interface WorkerdOptions {
  /** Folder with the glue JS and its core *.wasm files. */
  transpiledDir: string;
  /** The glue, relative to transpiledDir (or absolute); defaults to component.js or the folder's only .js. */
  jsFile?: string;
  port: number;
  /** "http": exports wasi:http/incoming-handler. "wagi": a wasi:cli command speaking CGI on stdout. */
  kind: "http" | "wagi";
  /**
   * "http" only: one instance serves every request, as Workers users run it (a guest that exports incomingHandler
   * itself; a FetchEvent guest answers once per instance). Default: a fresh instance per request.
   */
  shared?: boolean;
}

/** Starts workerd on 127.0.0.1:`port`; resolves once it answers HTTP. */
export async function startWorkerd(opts: WorkerdOptions): Promise<Workerd> {
  // Fail early on a busy port; otherwise the readiness probe could reach whatever holds it.
  Deno.listen({ hostname: "127.0.0.1", port: opts.port }).close();
  const src = opts.transpiledDir.replace(/\/$/, "");
  const names = [...Deno.readDirSync(src)].filter((e) => e.isFile).map((e) => e.name).sort();
  const jsFile = opts.jsFile ??
    (names.includes("component.js") ? "component.js" : names.find((n) => n.endsWith(".js")));
  if (!jsFile) throw new Error(`no glue .js in ${src}`);
  const cores = names.filter((n) => n.endsWith(".wasm"));

  const dir = await Deno.makeTempDir({ prefix: "workerd-bench-" });
  await Deno.mkdir(`${dir}/shim`);
  const modules: string[] = [];
  const add = async (name: string, type: "esModule" | "wasm", data: string | Uint8Array) => {
    if (typeof data === "string") await Deno.writeTextFile(`${dir}/${name}`, data);
    else await Deno.writeFile(`${dir}/${name}`, data);
    modules.push(`(name = ${JSON.stringify(name)}, ${type} = embed ${JSON.stringify(name)})`);
  };

  // The first module is the main one.
  await add("worker.js", "esModule", workerSource(cores, opts.kind, opts.shared ?? false));
  const glue = await Deno.readTextFile(jsFile.startsWith("/") ? jsFile : `${src}/${jsFile}`);
  await add("glue.js", "esModule", glue.replaceAll(debugGate, "return;"));
  for (const core of cores) await add(core, "wasm", await Deno.readFile(`${src}/${core}`));
  for (const shim of shimClosure()) await add(`shim/${shim}`, "esModule", Deno.readTextFileSync(`${shimDir}/${shim}`));

  await Deno.writeTextFile(
    `${dir}/config.capnp`,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${opts.port}", http = (), service = "main") ],
);
const w :Workerd.Worker = (
  modules = [
    ${modules.join(",\n    ")}
  ],
  compatibilityDate = "2025-09-01",
);
`,
  );

  const child = new Deno.Command(`${root}node_modules/.bin/workerd`, {
    args: ["serve", `${dir}/config.capnp`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Drain stderr (a full pipe would stall workerd); keep its tail for errors.
  let log = "";
  const drained = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (s) => void (log = (log + s).slice(-4000)) }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));

  const url = `http://127.0.0.1:${opts.port}`;
  const close = async () => {
    if (!exited) child.kill("SIGTERM");
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      if (exited) throw new Error("exited");
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel();
      return { url, close };
    } catch {
      if (exited || Date.now() > deadline) {
        await close();
        throw new Error(`workerd did not start${exited ? " (exited)" : ""}:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The shim entry files plus every file they import, relative to shimDir. */
function shimClosure(): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = Deno.readTextFileSync(`${shimDir}/${file}`);
    for (const m of text.matchAll(/from\s+["']\.\/([\w.-]+\.js)["']/g)) visit(m[1]);
  };
  shimEntries.forEach(visit);
  return [...seen].sort();
}

/** The worker's main module: instantiates the glue per request (or once, `shared`) and answers it. */
function workerSource(cores: string[], kind: "http" | "wagi", shared: boolean): string {
  const imports = cores.map((c, i) => `import core${i} from ${JSON.stringify(`./${c}`)};`).join("\n");
  const table = cores.map((c, i) => `${JSON.stringify(c)}: core${i}`).join(", ");
  return `${imports}
import * as cli from "./shim/cli.js";
import * as io from "./shim/io.js";
import * as clocks from "./shim/clocks.js";
import * as random from "./shim/random.js";
import * as filesystem from "./shim/filesystem.js";
import * as sockets from "./shim/sockets.js";
import * as http from "./shim/http.js";
import { instantiate } from "./glue.js";

const KIND = ${JSON.stringify(kind)};
const SHARED = ${shared};
let sharedInstance;
const cores = { ${table} };
const getCoreModule = (name) => cores[name];
const sink = { write() {}, blockingFlush() {}, flush() {} };

function wasiImports(environment, stdin, out) {
  let offset = 0;
  const c = cli.createCli({
    environment,
    arguments: ["guest"],
    stdin: {
      blockingRead(len) {
        if (offset >= stdin.length) throw { tag: "closed" };
        const chunk = stdin.subarray(offset, offset + Number(len));
        offset += chunk.length;
        return chunk;
      },
      subscribe: () => io.pollableCreate(),
    },
    stdout: out ? { write: (b) => void out.push(b.slice()), blockingFlush() {}, flush() {} } : sink,
    stderr: sink,
  });
  const fs = filesystem.createFilesystem({ preopens: {} });
  const base = {
    "wasi:cli/environment": c.environment, "wasi:cli/exit": c.exit,
    "wasi:cli/stdin": c.stdin, "wasi:cli/stdout": c.stdout, "wasi:cli/stderr": c.stderr,
    "wasi:cli/terminal-input": c.terminalInput, "wasi:cli/terminal-output": c.terminalOutput,
    "wasi:cli/terminal-stdin": c.terminalStdin, "wasi:cli/terminal-stdout": c.terminalStdout,
    "wasi:cli/terminal-stderr": c.terminalStderr,
    "wasi:filesystem/preopens": fs.preopens, "wasi:filesystem/types": fs.types,
    "wasi:io/error": io.error, "wasi:io/poll": io.poll, "wasi:io/streams": io.streams,
    "wasi:random/random": random.random, "wasi:random/insecure": random.insecure,
    "wasi:random/insecure-seed": random.insecureSeed,
    "wasi:clocks/monotonic-clock": clocks.monotonicClock, "wasi:clocks/wall-clock": clocks.wallClock,
    "wasi:http/types": http.types,
    "wasi:http/outgoing-handler": { handle() { throw { tag: "HTTP-request-denied" }; } },
    "wasi:sockets/instance-network": sockets.instanceNetwork, "wasi:sockets/network": sockets.network,
    "wasi:sockets/ip-name-lookup": sockets.ipNameLookup,
    "wasi:sockets/tcp": sockets.tcp, "wasi:sockets/tcp-create-socket": sockets.tcpCreateSocket,
    "wasi:sockets/udp": sockets.udp, "wasi:sockets/udp-create-socket": sockets.udpCreateSocket,
  };
  const all = {};
  for (const [k, v] of Object.entries(base)) {
    all[k] = v;
    for (let minor = 0; minor <= 12; minor++) all[k + "@0.2." + minor] = v;
  }
  return all;
}

const pick = (inst, iface, short) => inst[short] ?? inst[Object.keys(inst).find((k) => k.startsWith(iface))];

async function wagi(request) {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  const env = {
    REQUEST_METHOD: request.method, PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1),
    SERVER_PROTOCOL: "HTTP/1.1", SERVER_NAME: url.hostname, SERVER_PORT: url.port,
    CONTENT_LENGTH: String(body.length), CONTENT_TYPE: request.headers.get("content-type") ?? "",
  };
  for (const [k, v] of request.headers) env["HTTP_" + k.toUpperCase().replaceAll("-", "_")] = v;
  const out = [];
  const inst = await instantiate(getCoreModule, wasiImports(env, body, out));
  try {
    await pick(inst, "wasi:cli/run", "run").run();
  } catch (err) {
    if (!err?.exitError || err.code !== 0) return new Response("guest failed\\n", { status: 500 });
  }
  const bytes = new Uint8Array(out.reduce((n, b) => n + b.length, 0));
  out.reduce((at, b) => (bytes.set(b, at), at + b.length), 0);
  let end = -1, skip = 0;
  for (let i = 0; i < bytes.length && end < 0; i++) {
    if (bytes[i] !== 10) continue;
    if (bytes[i + 1] === 10) [end, skip] = [i, 2];
    else if (bytes[i + 1] === 13 && bytes[i + 2] === 10) [end, skip] = [i, 3];
  }
  if (end < 0) return new Response("guest sent no CGI headers\\n", { status: 502 });
  const headers = new Headers();
  let status = 200;
  for (const line of new TextDecoder().decode(bytes.subarray(0, end)).split(/\\r?\\n/)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const [name, value] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
    if (name.toLowerCase() === "status") status = parseInt(value, 10) || 200;
    else headers.append(name, value);
  }
  if (headers.has("location") && status === 200) status = 302;
  return new Response(bytes.subarray(end + skip), { status, headers });
}

export default {
  async fetch(request) {
    if (KIND === "wagi") return await wagi(request);
    const make = () => instantiate(getCoreModule, wasiImports({}, new Uint8Array(), null));
    const inst = await (SHARED ? (sharedInstance ??= make()) : make());
    return await http.handleIncomingRequest(request, pick(inst, "wasi:http/incoming-handler", "incomingHandler").handle);
  },
};
`;
}

if (import.meta.main) {
  const [transpiledDir, kind, port = "8787", jsFile] = Deno.args;
  if (!transpiledDir || (kind !== "http" && kind !== "wagi")) {
    console.error("usage: serve.ts <transpiledDir> <http|wagi> [port] [jsFile]");
    Deno.exit(2);
  }
  const w = await startWorkerd({ transpiledDir, jsFile, port: Number(port), kind });
  console.log(`workerd serving ${transpiledDir} (${kind}) at ${w.url}; Ctrl-C stops it`);
  Deno.addSignalListener("SIGINT", () => w.close().then(() => Deno.exit(0)));
}
