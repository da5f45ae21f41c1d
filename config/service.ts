/** service.toml: parse and validate `[[service]]` blocks (seed 002). */

import { parse, TomlError } from "smol-toml";
import { OrcaError } from "../errors.ts";
import { quote, type Source, TableReader } from "./reader.ts";
import { checkRefs } from "./secrets.ts";
import { readTls } from "./tls.ts";
import { parseTrigger } from "./triggers.ts";
import type { FileMount, GpuRequest, Probe, Rollout, ServiceSpec, WasmCapabilities } from "./types.ts";
import {
  formatMemory,
  MAX_CONTAINER_MEMORY,
  MAX_WASM_MEMORY,
  MIN_CONTAINER_MEMORY,
  parseSize,
  WASM_PAGE,
} from "./units.ts";

export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME_HINT = "use lowercase letters, digits and dashes (at most 63), e.g. `hello-api`";
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9*]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/;
/** An HTTP path for probes: printable, no query-breaking whitespace, bounded. */
const PROBE_PATH = /^\/[\x21-\x7e]{0,2047}$/;
const PROBE_HINT = 'a path starting with "/", without spaces, e.g. "/healthz"';
/** At most this many seconds between probes or before the first (a day). */
const MAX_PROBE_SECS = 86_400;
/** The most VRAM a GPU request or a node's GPU may name, in MB (a petabyte: past any card). */
export const MAX_VRAM_MB = 1_000_000_000;
/** Mounted files per mount (also the limit `orca deploy` reads a folder to). */
export const MAX_MOUNT_FILES = 10_000;
/** The longest path of a mounted file, or of a guest path. */
const MAX_MOUNT_PATH = 4096;

/** Parses TOML text, turning syntax errors into a located `OrcaError`. */
export function parseToml(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const firstLine = err.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new OrcaError("config", `Cannot parse ${file}: ${firstLine}`, {
        where: `${file}:${err.line}:${err.column}`,
        hint: "check the TOML syntax on that line",
      });
    }
    throw err;
  }
}

/** Parses a whole service.toml of project `project`. */
export function parseServiceFile(text: string, file: string, project: string): ServiceSpec[] {
  const doc = parseToml(text, file);
  const top = new TableReader(doc, { file, text }, []);
  const blocks = top.tables("service");
  top.done();
  if (blocks.length === 0) {
    throw new OrcaError("config", `${file} declares no [[service]] block`, {
      where: file,
      hint: 'add at least one [[service]] with a name, e.g. name = "api"',
    });
  }
  const services = blocks.map((_, i) =>
    readService((doc.service as unknown[])[i], { file, text }, project, ["service", i])
  );
  const seen = new Set<string>();
  for (const s of services) {
    if (seen.has(s.name)) {
      throw new OrcaError("config", `service name "${s.name}" is declared twice in project "${project}"`, {
        where: file,
        hint: "service names must be unique within a project",
      });
    }
    seen.add(s.name);
  }
  return services;
}

/** Validates one service table (from TOML or from an API request body). */
export function readService(
  table: unknown,
  source: Source,
  project: string,
  path: (string | number)[] = [],
  opts: { api?: boolean } = {},
): ServiceSpec {
  const nameGuess = typeof table === "object" && table !== null ? (table as { name?: unknown }).name : undefined;
  // Quoted and cut short: the name is not validated yet, and it prefixes every message.
  const subject = typeof nameGuess === "string" && nameGuess ? `service ${quote(nameGuess, 63)}` : undefined;
  const r = new TableReader(table, { ...source, subject, subjectDepth: path.length }, path);
  const name = r.string("name", { required: true, pattern: NAME_PATTERN, patternHint: NAME_HINT })!;
  if (opts.api) {
    // The API takes the specs `orca deploy` built: they carry their project.
    const declaredProject = r.string("project");
    if (declaredProject !== undefined && declaredProject !== project) {
      throw r.error(
        r.path("project"),
        `says ${JSON.stringify(declaredProject)} but the service is listed under "${project}"`,
      );
    }
  }
  const image = r.string("image");
  const module = r.string("module");
  // The client fills in module_hash after reading the module; users never write it.
  const moduleHash = opts.api
    ? r.string("module_hash", {
      required: module !== undefined,
      pattern: /^[0-9a-f]{64}$/,
      patternHint: "a sha256 in hex",
    })
    : undefined;
  const declared = r.string("runtime", { pattern: /^(wasm|container)$/, patternHint: 'use "wasm" or "container"' });
  if (image && module) {
    throw r.error(
      r.path("module"),
      "cannot be combined with `image`",
      "a service runs either a Wasm module or a container image",
    );
  }
  const runtime = (declared ?? (module ? "wasm" : "container")) as ServiceSpec["runtime"];
  if (runtime === "wasm" && !module) {
    throw r.error(r.path("module"), "is required for a wasm service", 'e.g. module = "./hello.wasm"');
  }
  if (runtime === "container" && !image) {
    throw r.error(
      r.path("image"),
      "is required for a container service",
      'set image = "..." or module = "./x.wasm" for Wasm',
    );
  }

  const triggers = r.strings("triggers") ?? [];
  triggers.forEach((t, i) => {
    const parsed = parseTrigger(t);
    if ("error" in parsed) throw r.error([...r.path("triggers"), i], parsed.error);
  });
  const domain = readDomain(r);
  const tls = readTls(r, domain, opts.api ?? false);
  const httpsRedirect = r.boolean("https_redirect");
  const health = r.string("health", { pattern: PROBE_PATH, patternHint: PROBE_HINT });
  const aliases = r.strings("aliases") ?? [];
  aliases.forEach((a, i) => {
    if (!NAME_PATTERN.test(a)) {
      throw r.error([...r.path("aliases"), i], `has an invalid alias ${JSON.stringify(a)}`, NAME_HINT);
    }
  });
  const command = r.strings("command");
  if (command && (command.length === 0 || runtime !== "container")) {
    throw r.error(r.path("command"), command.length === 0 ? "must not be empty" : "applies to container services only");
  }
  command?.forEach((arg, i) => checkRefs(r, [...r.path("command"), i], arg));
  const volumes = r.strings("volumes") ?? [];
  volumes.forEach((v, i) => {
    if (runtime !== "container") throw r.error([...r.path("volumes"), i], "applies to container services only");
    if (!/^([A-Za-z0-9][A-Za-z0-9_.-]*|\/[^:]*):\/[^:]*(:(ro|rw))?$/.test(v)) {
      throw r.error(
        [...r.path("volumes"), i],
        `has an invalid mount ${JSON.stringify(v)}`,
        'write "name:/path", "/host/path:/path" or add ":ro"',
      );
    }
  });
  const env = r.stringMap("env") ?? {};
  for (const key of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw r.error([...r.path("env"), key], "is not a valid environment variable name");
    }
    checkRefs(r, [...r.path("env"), key], env[key]);
  }

  const spec: ServiceSpec = {
    project,
    name,
    runtime,
    ...(image !== undefined && { image }),
    ...(module !== undefined && { module }),
    ...(moduleHash !== undefined && { module_hash: moduleHash }),
    ...optional("command", command),
    volumes,
    triggers,
    replicas: r.number("replicas", { integer: true, min: 0, max: 10_000 }) ?? 1,
    ...optional("port", r.number("port", { integer: true, min: 1, max: 65535 })),
    ...optional("domain", domain),
    ...optional("tls", tls),
    ...(httpsRedirect === false && { https_redirect: false }),
    ...optional("health", health),
    aliases,
    internal: r.boolean("internal") ?? false,
    env,
    resources: readResources(r, runtime, opts.api ?? false),
    placement: readPlacement(r),
    ...optional("readiness", readProbe(r, "readiness")),
    ...optional("liveness", readProbe(r, "liveness")),
    ...optional("rollout", readRollout(r)),
    wasm: readWasm(r, opts.api ?? false, runtime),
    limits: readLimits(r, opts.api ?? false),
  };
  r.done();
  return spec;
}

/** `domain`, lowercased; an internationalized name (`bücher.example`) is kept in its ASCII form (`xn--...`). */
function readDomain(r: TableReader): string | undefined {
  const raw = r.string("domain");
  if (raw === undefined) return undefined;
  let ascii = raw;
  // deno-lint-ignore no-control-regex
  if (/[^\x00-\x7f]/.test(raw)) {
    try {
      ascii = new URL(`http://${raw}/`).hostname;
    } catch {
      ascii = raw;
    }
  }
  if (!DOMAIN_PATTERN.test(ascii)) {
    throw r.error(
      r.path("domain"),
      `has an invalid value ${JSON.stringify(raw)}`,
      "use a host name like `api.example.com`",
    );
  }
  return ascii.toLowerCase();
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function readResources(
  parent: TableReader,
  runtime: ServiceSpec["runtime"],
  api: boolean,
): ServiceSpec["resources"] {
  const r = parent.table("resources");
  if (!r) return {};
  const memory = readMemory(r, runtime, api);
  const cpu = r.number("cpu", { min: 0.001, max: 1024 });
  const g = r.table("gpu");
  let gpu: GpuRequest | undefined;
  if (g) {
    gpu = {
      count: g.number("count", { integer: true, min: 1, max: 64 }) ?? 1,
      vendor: (g.string("vendor", { pattern: /^(nvidia|amd)$/, patternHint: 'use "nvidia" or "amd"' }) ??
        "nvidia") as GpuRequest["vendor"],
      ...optional("vram_min", g.number("vram_min", { integer: true, min: 1, max: MAX_VRAM_MB })),
    };
    g.done();
  }
  r.done();
  return { ...optional("memory", memory), ...optional("cpu", cpu), ...optional("gpu", gpu) };
}

/**
 * `resources.memory` in bytes. A Wasm service's memory is a Wasm memory: at
 * least one page (64Ki), at most what 32 bits address (4Gi). A container gets
 * at least Docker's minimum (6Mi).
 */
function readMemory(r: TableReader, runtime: ServiceSpec["runtime"], api: boolean): number | undefined {
  const raw = r.raw("memory");
  if (raw === undefined) return undefined;
  // In service.toml a size is written as text; the API carries the parsed byte count.
  const memory = typeof raw === "string"
    ? parseSize(raw)
    : api && Number.isSafeInteger(raw)
    ? raw as number
    : undefined;
  const shown = typeof raw === "string" ? quote(raw) : String(raw);
  if (memory === undefined) {
    throw r.error(r.path("memory"), `is not a valid size: ${shown}`, 'write it like "512Mi", "1Gi" or "64M"');
  }
  const [min, max, what] = runtime === "wasm"
    ? [WASM_PAGE, MAX_WASM_MEMORY, "a Wasm service"]
    : [MIN_CONTAINER_MEMORY, MAX_CONTAINER_MEMORY, "a container"];
  if (memory < min || memory > max) {
    const bound = memory < min ? `at least ${formatMemory(min)}` : `at most ${formatMemory(max)}`;
    const why = runtime === "wasm"
      ? memory < min ? " (one Wasm page)" : " (what a 32-bit Wasm memory can address)"
      : memory < min
      ? " (Docker's minimum)"
      : "";
    throw r.error(r.path("memory"), `must be ${bound} for ${what}${why}, got ${shown}`, 'e.g. "128Mi"');
  }
  return memory;
}

function readPlacement(parent: TableReader): ServiceSpec["placement"] {
  const r = parent.table("placement");
  if (!r) return { labels: {} };
  const placement = { ...optional("node", r.string("node")), labels: r.stringMap("labels") ?? {} };
  r.done();
  return placement;
}

function readProbe(parent: TableReader, key: "readiness" | "liveness"): Probe | undefined {
  const r = parent.table(key);
  if (!r) return undefined;
  // Bounded so that every wait fits a timer (past 2^31-1 ms a JavaScript timer fires at once).
  const probe: Probe = {
    path: r.string("path", { required: true, pattern: PROBE_PATH, patternHint: PROBE_HINT })!,
    interval_secs: r.number("interval_secs", { min: 1, max: MAX_PROBE_SECS }) ?? (key === "readiness" ? 5 : 10),
    timeout_secs: r.number("timeout_secs", { min: 1, max: 3600 }) ?? 3,
    failure_threshold: r.number("failure_threshold", { integer: true, min: 1, max: 1000 }) ?? 3,
    initial_delay_secs: r.number("initial_delay_secs", { min: 0, max: MAX_PROBE_SECS }) ?? 0,
  };
  r.done();
  return probe;
}

function readRollout(parent: TableReader): Rollout | undefined {
  const r = parent.table("rollout");
  if (!r) return undefined;
  const strategy = r.string("strategy", { pattern: /^(all|canary)$/, patternHint: 'use "canary" or "all"' }) ?? "all";
  const rollout: Rollout = {
    strategy: strategy as Rollout["strategy"],
    canary_percent: r.number("canary_percent", { min: 1, max: 99 }) ?? 10,
    analysis_secs: r.number("analysis_secs", { integer: true, min: 1, max: 86_400 }) ?? 60,
    max_error_rate: r.number("max_error_rate", { min: 0, max: 1 }) ?? 0.02,
    ...optional("max_p99_ms", r.number("max_p99_ms", { min: 1, max: 3_600_000 })),
  };
  r.done();
  return rollout;
}

function readLimits(parent: TableReader, api: boolean): ServiceSpec["limits"] {
  const r = parent.table("limits");
  if (!r) return {};
  const limits = {
    ...optional("timeout_ms", r.number("timeout_ms", { integer: true, min: 1, max: 3_600_000 })),
    ...optional("max_body", readSize(r, "max_body", api, 1, 64 * 2 ** 30)),
    ...optional("max_header", readSize(r, "max_header", api, 1024, 2 ** 20)),
  };
  r.done();
  return limits;
}

/** A size in bytes: text like "10Mi" in service.toml, the byte count in the API; from `min` to `max`. */
function readSize(r: TableReader, key: string, api: boolean, min: number, max: number): number | undefined {
  const raw = r.raw(key);
  if (raw === undefined) return undefined;
  const bytes = typeof raw === "string" ? parseSize(raw) : api && Number.isSafeInteger(raw) ? raw as number : undefined;
  const shown = typeof raw === "string" ? quote(raw) : String(raw);
  if (bytes === undefined) {
    throw r.error(r.path(key), `is not a valid size: ${shown}`, 'write it like "10Mi" or "64Ki"');
  }
  if (bytes < min || bytes > max) {
    throw r.error(r.path(key), `must be from ${formatMemory(min)} to ${formatMemory(max)}, got ${shown}`);
  }
  return bytes;
}

function readWasm(parent: TableReader, api: boolean, runtime: ServiceSpec["runtime"]): ServiceSpec["wasm"] {
  const r = parent.table("wasm");
  if (!r) return { allowed_hosts: [], files: {} };
  const instance = r.string("instance", { pattern: /^(isolated|reuse)$/, patternHint: 'use "isolated" or "reuse"' });
  if (instance !== undefined && runtime !== "wasm") throw r.error(r.path("instance"), "applies to wasm services only");
  const hosts = r.strings("allowed_hosts") ?? [];
  hosts.forEach((h, i) => {
    if (h.length > 260 || !HOST_PATTERN.test(h)) {
      throw r.error(
        [...r.path("allowed_hosts"), i],
        `has an invalid host ${quote(h)}`,
        'write "api.example.com" or "127.0.0.1:9000"',
      );
    }
  });
  const files: Record<string, FileMount> = {};
  const table = r.raw("files");
  if (table !== undefined) {
    if (typeof table !== "object" || table === null || Array.isArray(table) || table instanceof Date) {
      throw r.error(r.path("files"), 'must be a table like { "/data" = "./data" }');
    }
    for (const [guest, value] of Object.entries(table)) {
      const at = [...r.path("files"), guest];
      const inside = guest.slice(1).replace(/\/$/, "");
      if (guest !== "/" && (!/^\/[A-Za-z0-9._\/-]*$/.test(guest) || !safeRelative(inside))) {
        throw r.error(at, "is not an absolute guest path without empty, `.` or `..` parts", 'e.g. "/data"');
      }
      files[guest] = readMount(r, at, value, api);
    }
  }
  r.done();
  return { allowed_hosts: hosts, files, ...optional("instance", instance as WasmCapabilities["instance"]) };
}

/** `a/b/c`: no empty, `.` or `..` part, no NUL, not too long. */
function safeRelative(path: string): boolean {
  return path.length > 0 && path.length <= MAX_MOUNT_PATH && !path.includes("\0") &&
    path.split("/").every((p) => p !== "" && p !== "." && p !== "..");
}

function readMount(r: TableReader, at: (string | number)[], value: unknown, api: boolean): FileMount {
  if (api) return readApiMount(r, at, value);
  if (typeof value !== "string" || !value.replace(/:(rw|ro)$/, "")) {
    throw r.error(at, 'must be a folder, e.g. "./data" or "./data:rw"');
  }
  if (value.includes("\0") || value.length > MAX_MOUNT_PATH) throw r.error(at, `is not a usable folder path`);
  const rw = value.endsWith(":rw");
  return { source: value.replace(/:(rw|ro)$/, ""), rw };
}

/**
 * A mount as `orca deploy` sends it: files by content hash. Every path is
 * relative and plain (a guest must not reach past its mount), and no file
 * is also a folder of another.
 */
function readApiMount(r: TableReader, at: (string | number)[], value: unknown): FileMount {
  const shape = "must be {source, rw, tree} with sha256 file hashes";
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw r.error(at, shape);
  const m = value as Partial<Record<keyof FileMount, unknown>>;
  const tree = m.tree;
  if (
    typeof m.source !== "string" || typeof m.rw !== "boolean" || typeof tree !== "object" || tree === null ||
    Array.isArray(tree)
  ) {
    throw r.error(at, shape);
  }
  if (m.source.length > MAX_MOUNT_PATH) throw r.error([...at, "source"], "is too long");
  const entries = Object.entries(tree);
  if (entries.length > MAX_MOUNT_FILES) throw r.error(at, `holds more than ${MAX_MOUNT_FILES} files`);
  for (const [path, hash] of entries) {
    if (typeof hash !== "string" || !/^[0-9a-f]{64}$/.test(hash)) throw r.error([...at, "tree", path], shape);
    if (!safeRelative(path)) {
      throw r.error([...at, "tree", path], "is not a relative file path without empty, `.` or `..` parts");
    }
  }
  // Sorted with "/" as the lowest character, whatever lies below a path comes right after it.
  const keys = entries.map(([path]) => path.replaceAll("/", "\0")).sort();
  const clash = keys.findIndex((k, i) => keys[i + 1]?.startsWith(`${k}\0`));
  if (clash >= 0) throw r.error([...at, "tree", keys[clash].replaceAll("\0", "/")], "is both a file and a folder");
  return { source: m.source, rw: m.rw, tree: Object.fromEntries(entries) as Record<string, string> };
}

/** A service's readiness probe: `[service.readiness]`, or `health` (a path) with the probe's defaults. */
export function readinessOf(spec: ServiceSpec): Probe | undefined {
  if (spec.readiness) return spec.readiness;
  if (!spec.health) return undefined;
  return { path: spec.health, interval_secs: 5, timeout_secs: 3, failure_threshold: 3, initial_delay_secs: 0 };
}
