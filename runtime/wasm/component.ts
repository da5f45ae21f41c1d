/**
 * Loading a prepared component: its core modules compiled, jco's glue
 * evaluated, instances made on demand. Needs only read access to the compile
 * cache, so guest host processes (host.ts) load from here without the
 * transpiler.
 */

import { OrcaError } from "../../errors.ts";

/**
 * How a guest is driven: a wasi:http handler, a WASI command (WAGI-style, and
 * jobs), or an `orca:jobs/handler` message handler (jobs; instance reused).
 */
export type GuestKind = "http" | "command" | "handler";

/** The export of each kind, by interface name prefix, and jco's short name for it. */
export const kindExports: [GuestKind, string, string][] = [
  ["http", "wasi:http/incoming-handler", "incomingHandler"],
  ["command", "wasi:cli/run", "run"],
  ["handler", "orca:jobs/handler", "handler"],
];

type InstantiateCore = (module: WebAssembly.Module, imports: WebAssembly.Imports) => Promise<WebAssembly.Instance>;

interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
    instantiateCore: InstantiateCore,
  ): Promise<Record<string, unknown>>;
}

/** A component ready to instantiate. */
export interface CompiledComponent {
  hash: string;
  kind: GuestKind;
  /** Whether every core module checks its interrupt flag (CPU deadlines hold). */
  interruptible: boolean;
  /** The export that drives the guest (`handle` or `run`). */
  instantiate(imports: Record<string, unknown>, onCore?: (i: WebAssembly.Instance) => void): Promise<GuestExports>;
}

export type GuestExports =
  | { kind: "http"; handle: (request: unknown, responseOut: unknown) => Promise<void> }
  | { kind: "command"; run: () => Promise<void> }
  | { kind: "handler"; handle: (topic: string, body: Uint8Array) => Promise<void> };

/**
 * A component made ready to compile anywhere: jco's glue and the core modules
 * (memory capped, interrupt checks added) written under the cache folder. A
 * guest host process compiles it from there without transpiling again.
 */
export interface PreparedComponent {
  hash: string;
  kind: GuestKind;
  /** Whether every core module checks its interrupt flag (CPU deadlines hold). */
  interruptible: boolean;
  /** jco's glue (component.js). */
  gluePath: string;
  /** Core module name (as the glue asks for it) -> path of its processed bytes. */
  cores: Record<string, string>;
}

/** Compiles a prepared component's core modules and evaluates its glue. */
export async function loadComponent(prepared: PreparedComponent): Promise<CompiledComponent> {
  const glue = await loadGlue(prepared.gluePath);
  const cores = new Map<string, WebAssembly.Module>();
  for (const [name, path] of Object.entries(prepared.cores)) {
    cores.set(name, await WebAssembly.compile(await Deno.readFile(path)));
  }
  const { kind, hash, interruptible } = prepared;
  const getCore = (name: string) => {
    const m = cores.get(name);
    if (!m) throw new OrcaError("internal", `transpiled component lacks core module ${name}`);
    return m;
  };
  return {
    hash,
    kind,
    interruptible,
    async instantiate(imports, onCore) {
      const exports = await glue.instantiate(getCore, imports, async (module, imp) => {
        const instance = await WebAssembly.instantiate(module, imp);
        onCore?.(instance);
        return instance;
      });
      return pickExport(exports, kind);
    },
  };
}

/**
 * Evaluates jco's glue without the module loader: a compiled `orca` binary
 * cannot import files written after it was built. In instantiation mode the
 * glue imports nothing and exports only `instantiate` (and `_util`).
 */
async function loadGlue(path: string): Promise<Glue> {
  const source = await Deno.readTextFile(path);
  const body = source
    .replace(/^export (function instantiate|const _util)\b/gm, "$1")
    // Only read when no getCoreModule is passed (we always pass one).
    .replaceAll("import.meta.url", JSON.stringify(new URL(`file://${path}`).href));
  if (!/^function instantiate\(/m.test(body) || /^\s*(import|export)\s|\bimport\s*\(|import\.meta/m.test(body)) {
    throw new OrcaError("internal", `unexpected shape of jco's generated glue: ${path}`, {
      hint: "the jco version changed; bump CACHE_VERSION in runtime/wasm/compile.ts and check loadGlue",
    });
  }
  const factory = new Function(`"use strict";\n${body}\nreturn { instantiate };`) as () => Glue;
  return factory();
}

function pickExport(exports: Record<string, unknown>, kind: GuestKind): GuestExports {
  const [, prefix, short] = kindExports.find(([k]) => k === kind)!;
  const key = Object.keys(exports).find((k) => k.startsWith(prefix)) ?? short;
  const ns = exports[key] as Record<string, (...args: never[]) => Promise<void>> | undefined;
  if (kind === "command" && ns?.run) return { kind, run: ns.run };
  if ((kind === "http" || kind === "handler") && ns?.handle) return { kind, handle: ns.handle } as GuestExports;
  throw new OrcaError("wasm", `the instance lacks its ${prefix} export`);
}
