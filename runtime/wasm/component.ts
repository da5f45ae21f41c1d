/**
 * Loading a prepared component: its core modules compiled, jco's glue
 * evaluated, instances made on demand. Needs only read access to the compile
 * cache, so guest host processes (host.ts) load from here without the
 * transpiler.
 */

import { OrcaError } from "../../errors.ts";
import { MEMORY_IMPORT, type MemoryLimits } from "./limits.ts";
import { preview1Host } from "./preview1.ts";
import { sandboxImports, type SandboxOptions } from "./wasi.ts";
import { GLUE_STATE, type GlueState, Snapshot } from "./snapshot.ts";

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

/** jco's glue takes an instance or a promise of one (it then goes on asynchronously). */
type InstantiateCore = (
  module: WebAssembly.Module,
  imports: WebAssembly.Imports,
) => WebAssembly.Instance | Promise<WebAssembly.Instance>;

interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
    instantiateCore: InstantiateCore,
  ): Record<string, unknown> | Promise<Record<string, unknown>>;
}

/** A component ready to instantiate. */
export interface CompiledComponent {
  hash: string;
  kind: GuestKind;
  /** Whether every core module checks its interrupt flag (CPU deadlines hold). */
  interruptible: boolean;
  /** Whether calls run the core module on the direct preview1 host (preview1.ts), not as a component. */
  direct: boolean;
  /** Drops the memories kept for reuse (the workload went idle, or away). */
  shrink(): void;
  /** Bytes of the memories kept for reuse. */
  keptBytes(): number;
  /**
   * A new instance in `sandbox`; returns the export that drives it (`handle` or `run`). One-shot unless `reuse`
   * (wasi:http handlers) or `snapshot`: a reusable one serves call after call, and `release` gives its memories
   * back when it is dropped. With `snapshot` (a `resettable` component, or a resettable preview1 command on the
   * direct host) it also comes with its state saved right after instantiation, to be put back after each call;
   * without one when the glue does not hand its state over.
   */
  instantiate(
    sandbox: SandboxOptions,
    onCore?: (i: WebAssembly.Instance) => void,
    opts?: { reuse?: boolean; snapshot?: boolean },
  ): Promise<GuestExports & { release?: () => void; snapshot?: Snapshot }>;
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
  /** Core modules that import their memory (MEMORY_IMPORT), with its limits: their memories are recycled. */
  memories?: Record<string, MemoryLimits>;
  /**
   * A preview1 command (a core module, not a component): the module itself, processed like the cores, for the
   * direct preview1 host.
   */
  preview1?: {
    path: string;
    interruptible: boolean;
    /** Set when the module imports its memory (MEMORY_IMPORT): memories are then recycled between calls. */
    memory?: MemoryLimits;
    /** Its module exports its state (snapshot.ts): WAGI requests reset one instance instead of making one each. */
    resettable?: boolean;
  };
  /**
   * A JavaScript guest that answers through a FetchEvent listener (`addEventListener("fetch")`): its engine answers
   * one request per instance (StarlingMonkey), so it is never reused.
   */
  fetchEvent?: boolean;
  /** A wasi:http handler whose cores export their state: isolated instances are reset, not made anew (snapshot.ts). */
  resettable?: boolean;
  /** Why a wasi:http handler's state cannot be reset: each request then gets a fresh instance. */
  notResettable?: string;
}

/**
 * Compiles a prepared component's core modules and evaluates its glue; or, for a preview1 command when `direct`
 * (it needs no files: the direct host has none), compiles just the module.
 */
export async function loadComponent(
  prepared: PreparedComponent,
  { direct = true }: { direct?: boolean } = {},
): Promise<CompiledComponent> {
  const { kind, hash } = prepared;
  if (direct && prepared.preview1) {
    const module = await WebAssembly.compile(await Deno.readFile(prepared.preview1.path));
    const memories = prepared.preview1.memory && new MemoryRecycler(prepared.preview1.memory);
    return {
      hash,
      kind,
      interruptible: prepared.preview1.interruptible,
      direct: true,
      shrink: () => memories?.clear(),
      keptBytes: () => memories?.bytes() ?? 0,
      instantiate(sandbox, onCore, opts = {}) {
        const memory = memories?.take();
        const host = preview1Host(module, sandbox, memory);
        const instance = new WebAssembly.Instance(module, host.imports);
        onCore?.(instance);
        const run = host.bind(instance);
        // A resettable command (its module exports its globals) keeps its instance: `_start` runs again on the
        // state saved here, put back after each call.
        const saved = opts.snapshot && prepared.preview1!.resettable
          ? Snapshot.take([instance], memory ? [memory] : [], NO_GLUE)
          : undefined;
        const release = () => memory && memories!.give(memory);
        if (saved) return Promise.resolve({ kind: "command", run, release, snapshot: saved });
        if (!memory) return Promise.resolve({ kind: "command", run });
        return Promise.resolve(releasingAfterCall({ kind: "command", run }, release));
      },
    };
  }
  const glue = await loadGlue(prepared.gluePath);
  const cores = new Map<string, WebAssembly.Module>();
  const recyclers = new Map<WebAssembly.Module, MemoryRecycler>();
  for (const [name, path] of Object.entries(prepared.cores)) {
    const module = await WebAssembly.compile(await Deno.readFile(path));
    cores.set(name, module);
    const limits = prepared.memories?.[name];
    if (limits) recyclers.set(module, new MemoryRecycler(limits));
  }
  const getCore = (name: string) => {
    const m = cores.get(name);
    if (!m) throw new OrcaError("internal", `transpiled component lacks core module ${name}`);
    return m;
  };
  return {
    hash,
    kind,
    interruptible: prepared.interruptible,
    direct: false,
    shrink() {
      for (const recycler of recyclers.values()) recycler.clear();
    },
    keptBytes: () => [...recyclers.values()].reduce((n, r) => n + r.bytes(), 0),
    async instantiate(sandbox, onCore, opts = {}) {
      const taken: [MemoryRecycler, WebAssembly.Memory][] = [];
      const snapshot = opts.snapshot && prepared.resettable && kind === "http";
      const instances: WebAssembly.Instance[] = [];
      const state: GlueState = { captureTables: [] };
      const imports = snapshot ? { ...sandboxImports(sandbox), [GLUE_STATE]: state } : sandboxImports(sandbox);
      // Synchronously: the glue then runs its whole instantiation in one go, where an async instantiate per core
      // module costs a promise round trip each.
      const exports = await glue.instantiate(getCore, imports, (module, imp) => {
        const recycler = recyclers.get(module);
        if (recycler) {
          const memory = recycler.take();
          taken.push([recycler, memory]);
          imp = { ...imp, [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: memory } };
        }
        const instance = new WebAssembly.Instance(module, imp);
        onCore?.(instance);
        if (snapshot) instances.push(instance);
        return instance;
      });
      const guest = pickExport(exports, kind);
      const release = () => {
        for (const [recycler, memory] of taken) recycler.give(memory);
      };
      const saved = snapshot ? Snapshot.take(instances, taken.map(([, m]) => m), state) : undefined;
      if (saved) return { ...guest, release, snapshot: saved };
      if (opts.reuse && kind === "http") return { ...guest, release };
      return taken.length === 0 ? guest : releasingAfterCall(guest, release);
    },
  };
}

/** A preview1 command's state for a snapshot: it has no glue, so no handle tables. */
const NO_GLUE: GlueState = { handleTables: [], captureTables: [] };

/**
 * A one-shot guest whose memories go back (`release`) once its one call is
 * over: it has returned, exited or trapped, so it can no longer run. Calling
 * it again is refused.
 */
function releasingAfterCall(guest: GuestExports, release: () => void): GuestExports {
  let called = false;
  const once = <A extends unknown[]>(f: (...args: A) => Promise<void>) => (...args: A) => {
    if (called) return Promise.reject(new OrcaError("internal", "a one-shot guest instance was called twice"));
    called = true;
    return f(...args).finally(release);
  };
  if (guest.kind === "command") return { kind: "command", run: once(guest.run) };
  if (guest.kind === "http") return { kind: "http", handle: once(guest.handle) };
  return guest;
}

/** Most memories kept for reuse per module, and the largest kept. */
const RECYCLED_MEMORIES = 4;
const RECYCLED_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Memories for a preview1 command's instances: one whose guest is done is
 * zeroed and handed to a later instance (as good as new: the instance applies
 * its data segments), which saves the page faults of a fresh memory.
 */
class MemoryRecycler {
  readonly #limits: MemoryLimits;
  readonly #free: WebAssembly.Memory[] = [];

  constructor(limits: MemoryLimits) {
    this.#limits = limits;
  }

  take(): WebAssembly.Memory {
    return this.#free.pop() ??
      new WebAssembly.Memory({
        initial: this.#limits.min,
        ...(this.#limits.max !== undefined && { maximum: this.#limits.max }),
      });
  }

  clear(): void {
    this.#free.length = 0;
  }

  bytes(): number {
    return this.#free.reduce((n, m) => n + m.buffer.byteLength, 0);
  }

  /** Takes back the memory of a guest that will not run again. */
  give(memory: WebAssembly.Memory): void {
    if (this.#free.length >= RECYCLED_MEMORIES || memory.buffer.byteLength > RECYCLED_MAX_BYTES) return;
    new Uint8Array(memory.buffer).fill(0); // nothing of this call's data reaches the next
    this.#free.push(memory);
  }
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
  // Hands the per-instance handle and capture tables to the host, for snapshot reset (snapshot.ts).
  const exposing = body
    .replace(/^function instantiate\(.*\{$/m, `$&\nconst orcaGlueState = imports?.[${JSON.stringify(GLUE_STATE)}];`)
    .replace(/^const HANDLE_TABLES\s*=\s*\[\];$/m, "$&\nif (orcaGlueState) orcaGlueState.handleTables = HANDLE_TABLES;")
    .replace(/^(\s*)const (captureTable\d+)\s*=\s*new Map\(\);$/gm, "$&\n$1orcaGlueState?.captureTables.push($2);");
  const factory = new Function(`"use strict";\n${exposing}\nreturn { instantiate };`) as () => Glue;
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
