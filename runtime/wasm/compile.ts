/**
 * Turns uploaded bytes into something we can instantiate fast: core modules
 * are adapted to components (WASI preview1 command adapter), components are
 * transpiled by jco (JSPI mode) once per content hash and cached on disk, and
 * every core module is compiled once.
 */

// The bindgen itself, not the package index: that loads oxc-minify's native binding (needs --allow-ffi).
import { $init as bindgenReady, generate } from "@bytecodealliance/jco-transpile/component";
import { componentNew } from "@bytecodealliance/jco-transpile/wasm-tools";
import { OrcaError } from "../../errors.ts";
import { instrumentInterrupts, needsInterrupts } from "./instrument.ts";
import { describeProvided, unprovidedImports } from "./wasi.ts";
import { capMemory, importMainMemory, type MemoryLimits, PAGE } from "./limits.ts";
import { exposeState } from "./snapshot.ts";
import { leanGlue } from "./lean_glue.ts";
import {
  type CompiledComponent,
  type GuestKind,
  kindExports,
  loadComponent,
  type PreparedComponent,
} from "./component.ts";

export type { CompiledComponent, GuestExports, GuestKind, PreparedComponent } from "./component.ts";
export { loadComponent } from "./component.ts";

/** A Wasm guest's memory cap when its service sets no `resources.memory`. */
export const DEFAULT_MEMORY_LIMIT = 128 * 2 ** 20;

/** Bumped when the transpile options or the glue patches change. */
const CACHE_VERSION = "jco-transpile-0.15.0-v6";

/** The WASI functions that may block; under JSPI they suspend the guest. */
const asyncImports = [
  "wasi:io/poll#poll",
  "wasi:io/poll#[method]pollable.block",
  "wasi:io/streams#[method]input-stream.blocking-read",
  "wasi:io/streams#[method]input-stream.blocking-skip",
  "wasi:io/streams#[method]output-stream.blocking-flush",
  "wasi:io/streams#[method]output-stream.blocking-write-and-flush",
  "wasi:io/streams#[method]output-stream.blocking-write-zeroes-and-flush",
  "wasi:io/streams#[method]output-stream.blocking-splice",
];
const asyncExports = ["wasi:cli/run#run", "wasi:http/incoming-handler#handle", "orca:jobs/handler#handle"];

/** Classifies bytes by their header: core module, component, or neither. */
export function wasmKind(bytes: Uint8Array): "core" | "component" | undefined {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    return undefined;
  }
  if (bytes[4] === 1 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0) return "core";
  if (bytes[6] === 1 && bytes[7] === 0) return "component";
  return undefined;
}

const adapterUrl = new URL(
  "../../node_modules/@bytecodealliance/jco/lib/wasi_snapshot_preview1.command.wasm",
  import.meta.url,
);

/**
 * Transpiles `bytes` (content hash `hash`) once, and writes its core modules
 * with every memory capped at `memoryLimitBytes` and interrupt checks added
 * (`instrument: false` leaves them out: for benchmarks and the tests of the
 * host backstop). Cached by hash and cap: a second call only reads a small file.
 */
export async function prepareComponent(
  bytes: Uint8Array,
  hash: string,
  cacheDir: string,
  memoryLimitBytes = DEFAULT_MEMORY_LIMIT,
  { instrument = true }: { instrument?: boolean } = {},
): Promise<PreparedComponent> {
  const dir = `${cacheDir}/${CACHE_VERSION}/${hash}`;
  const maxPages = Math.max(1, Math.floor(memoryLimitBytes / PAGE));
  // v2: prepared.json says whether a JavaScript guest answers through a FetchEvent listener; v3: HTTP handlers'
  // cores export their state for snapshot reset (snapshot.ts); v4: so do preview1 commands'.
  const processedDir = `${dir}/v4-pages-${maxPages}${instrument ? "" : "-unchecked"}`;
  try {
    return JSON.parse(await Deno.readTextFile(`${processedDir}/prepared.json`)) as PreparedComponent;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const meta = await readMeta(dir) ?? await transpileToDir(bytes, dir);
  const tmp = `${processedDir}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp, { recursive: true });
  let interruptible = true;
  let notResettable: string | undefined;
  const cores: Record<string, string> = {};
  const memories: Record<string, MemoryLimits> = {};
  /**
   * A core module capped, instrumented (unless an opcode the instrumenter does not know: it then runs without
   * deadline checks) and, when its instances are one-shot, importing its memory so that memories are recycled
   * (component.ts).
   */
  const processCore = (core: Uint8Array, oneShot: boolean) => {
    const capped = capMemory(core, maxPages);
    const instrumented = !instrument ? undefined : needsInterrupts(capped) ? instrumentInterrupts(capped) : capped;
    const imported = oneShot ? importMainMemory(instrumented ?? capped) : undefined;
    return { bytes: imported?.module ?? instrumented ?? capped, checked: instrumented !== undefined, imported };
  };
  for (const name of meta.cores) {
    // Message handlers keep their instance between messages: their memories are not recycled.
    const core = processCore(await Deno.readFile(`${dir}/${name}`), meta.kind !== "handler");
    if (!core.checked) interruptible = false;
    if (core.imported) memories[name] = core.imported.limits;
    let bytes = core.bytes;
    if (meta.kind === "http") {
      const exposed = exposeState(bytes);
      if ("why" in exposed) notResettable ??= `core module ${name}: ${exposed.why}`;
      else bytes = exposed.module;
    }
    await Deno.writeFile(`${tmp}/${name}`, bytes);
    cores[name] = `${processedDir}/${name}`;
  }
  const prepared: PreparedComponent = {
    hash,
    kind: meta.kind,
    interruptible,
    gluePath: `${dir}/component.js`,
    cores,
    memories,
    ...(meta.kind === "http" && isFetchEventGuest(bytes) && { fetchEvent: true }),
    ...(meta.kind === "http" && (notResettable ? { notResettable } : { resettable: true })),
  };
  if (meta.kind === "command" && isPreview1Command(bytes)) {
    const core = processCore(bytes, true);
    // Exported state lets WAGI requests reset one instance (snapshot.ts); a module that cannot be reset runs as
    // before, a fresh instance per request.
    const exposed = exposeState(core.bytes);
    await Deno.writeFile(`${tmp}/preview1.wasm`, "module" in exposed ? exposed.module : core.bytes);
    prepared.preview1 = {
      path: `${processedDir}/preview1.wasm`,
      interruptible: core.checked,
      ...(core.imported && { memory: core.imported.limits }),
      ...("module" in exposed && { resettable: true }),
    };
  }
  await Deno.writeTextFile(`${tmp}/prepared.json`, JSON.stringify(prepared));
  try {
    await Deno.rename(tmp, processedDir);
  } catch (err) {
    // Another preparation of the same module won the race: theirs is as good.
    await Deno.remove(tmp, { recursive: true });
    const theirs = await Deno.stat(`${processedDir}/prepared.json`).catch(() => undefined);
    if (!theirs) throw err;
  }
  return prepared;
}

/** Prepares and compiles in one step (for callers that run guests in this process). */
export async function compileComponent(
  bytes: Uint8Array,
  hash: string,
  cacheDir: string,
  memoryLimitBytes = DEFAULT_MEMORY_LIMIT,
): Promise<CompiledComponent> {
  return loadComponent(await prepareComponent(bytes, hash, cacheDir, memoryLimitBytes));
}

/**
 * Whether a component is a JavaScript guest answering through a FetchEvent listener: componentize-js keeps the
 * source in the component, and a guest that exports incomingHandler itself has no such listener.
 */
function isFetchEventGuest(bytes: Uint8Array): boolean {
  const text = new TextDecoder("latin1").decode(bytes);
  return /addEventListener\(\s*["'`]fetch["'`]/.test(text);
}

/** A core module the direct preview1 host can run: a command (`_start`, a memory) importing only preview1 functions. */
function isPreview1Command(bytes: Uint8Array): boolean {
  if (wasmKind(bytes) !== "core") return false;
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const exports = WebAssembly.Module.exports(module);
  return exports.some((e) => e.name === "_start" && e.kind === "function") &&
    exports.some((e) => e.name === "memory" && e.kind === "memory") &&
    WebAssembly.Module.imports(module).every((i) => i.module === "wasi_snapshot_preview1" && i.kind === "function");
}

interface Meta {
  kind: GuestKind;
  cores: string[];
}

async function readMeta(dir: string): Promise<Meta | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/meta.json`)) as Meta;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * jco's output for `bytes` (a core module is adapted to a component first), as
 * jco publishes it: its files, its imports and exports. Orca's patches come
 * after (`patchGlue`); benchmarks hand this to peers that run jco's glue.
 */
export async function transpile(bytes: Uint8Array): Promise<ReturnType<typeof generate>> {
  const kind = wasmKind(bytes);
  if (!kind) {
    throw new OrcaError("wasm", "the module is not WebAssembly (no `\\0asm` header)", {
      hint: "point `module` at a .wasm file built for WASI (a component or a preview1 core module)",
    });
  }
  let component = bytes;
  if (kind === "core") {
    checkCoreModule(bytes);
    try {
      const adapter = await Deno.readFile(adapterUrl);
      component = await componentNew(bytes, [["wasi_snapshot_preview1", adapter]]);
    } catch (err) {
      throw new OrcaError("wasm", `cannot adapt the core module to a component: ${firstLine(err)}`, {
        hint: "core modules must be WASI preview1 commands (built with --target=wasm32-wasi and a main function)",
      });
    }
  }
  try {
    await bindgenReady;
    return generate(component, {
      name: "component",
      instantiation: { tag: "async" },
      asyncMode: { tag: "jspi", val: { imports: asyncImports, exports: asyncExports } },
      noTypescript: true,
      noNodejsCompat: true,
      noComponentErrorWrapping: true,
      // Never inline core modules as base64: each is compiled once, from its own file.
      base64Cutoff: 0,
    });
  } catch (err) {
    throw new OrcaError("wasm", `cannot transpile the component: ${firstLine(err)}`, {
      hint: "is it a valid WASI 0.2 component? `wasm-tools validate` tells more",
    });
  }
}

async function transpileToDir(bytes: Uint8Array, dir: string): Promise<Meta> {
  const result = await transpile(bytes);
  const unprovided = unprovidedImports(result.imports);
  if (unprovided.length > 0) {
    throw new OrcaError(
      "wasm",
      `the component imports ${unprovided.join(", ")}, which Orca does not provide to guests`,
      { hint: `guests may import ${describeProvided()}` },
    );
  }
  const exportNames = result.exports.map(([name]) => name);
  const guestKind = kindExports.find(([, prefix]) => exportNames.some((n) => n.startsWith(prefix)))?.[0];
  if (!guestKind) {
    throw new OrcaError(
      "wasm",
      `the component exports none of wasi:http/incoming-handler, wasi:cli/run, orca:jobs/handler`,
      {
        hint: `it exports: ${exportNames.join(", ") || "nothing"}`,
      },
    );
  }
  // Write into a fresh folder, then rename: a crash never leaves half a cache entry.
  const tmp = `${dir}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp, { recursive: true });
  const cores: string[] = [];
  for (const [name, content] of result.files) {
    if (name.endsWith(".wasm")) {
      cores.push(name);
      await Deno.writeFile(`${tmp}/${name}`, content);
    } else if (name === "component.js") {
      await Deno.writeTextFile(`${tmp}/${name}`, patchGlue(new TextDecoder().decode(content)));
    }
  }
  const meta: Meta = { kind: guestKind, cores };
  await Deno.writeTextFile(`${tmp}/meta.json`, JSON.stringify(meta));
  try {
    await Deno.rename(tmp, dir);
  } catch (err) {
    // Another compile of the same hash won the race: use its folder.
    await Deno.remove(tmp, { recursive: true });
    if (!(await readMeta(dir))) throw err;
  }
  return meta;
}

/** What Orca accepts, for messages about modules it does not. */
const ACCEPTED = "a WASI preview1 command (a core module exporting `_start`, e.g. C with `main` built by clang " +
  "--target=wasm32-wasi), or a component exporting wasi:http/incoming-handler (HTTP), wasi:cli/run (HTTP " +
  "WAGI-style, and jobs) or orca:jobs/handler (jobs)";

/** A core module must be a WASI preview1 command: `_start`, and imports of preview1 functions only. */
function checkCoreModule(bytes: Uint8Array): void {
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw new OrcaError("wasm", `the core module is not valid WebAssembly: ${firstLine(err)}`, {
      hint: `Orca runs ${ACCEPTED}`,
    });
  }
  const foreign = WebAssembly.Module.imports(module).filter((i) =>
    i.module !== "wasi_snapshot_preview1" || i.kind !== "function"
  );
  if (foreign.length > 0) {
    const names = foreign.map((i) => `${i.module}.${i.name} (${i.kind})`);
    throw new OrcaError(
      "wasm",
      `the core module imports ${names.join(", ")}: a core module may import only WASI preview1 functions ` +
        "(wasi_snapshot_preview1)",
      { hint: `Orca runs ${ACCEPTED}` },
    );
  }
  const start = WebAssembly.Module.exports(module).some((e) => e.name === "_start" && e.kind === "function");
  if (!start) {
    throw new OrcaError("wasm", "the core module exports no `_start` function, so it is not a WASI command", {
      hint: `Orca runs ${ACCEPTED}`,
    });
  }
}

/**
 * Orca's patches to jco's glue: its debug gate, which reads
 * `process.env.JCO_DEBUG` on every call (under Deno that needs env permission
 * and cost about half the per-call time), made a plain return; then the lean
 * call path for WASI 0.2 components (lean_glue.ts).
 */
export function patchGlue(js: string): string {
  return leanGlue(js.replaceAll("if (!globalThis?.process?.env?.JCO_DEBUG) { return; }", "return;"));
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}
