/** service.toml: parse and validate `[[service]]` blocks (seed 002). */

import { parse, TomlError } from "smol-toml";
import { OrcaError } from "../errors.ts";
import { type Source, TableReader } from "./reader.ts";
import { parseTrigger } from "./triggers.ts";
import type { FileMount, GpuRequest, Probe, ServiceSpec } from "./types.ts";
import { parseMemory } from "./units.ts";

export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME_HINT = "use lowercase letters, digits and dashes (at most 63), e.g. `hello-api`";
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9*]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/;

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
  const nameGuess = typeof (table as { name?: unknown })?.name === "string"
    ? (table as { name: string }).name
    : undefined;
  const subject = nameGuess ? `service "${nameGuess}"` : undefined;
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
  const domain = r.string("domain", { pattern: DOMAIN_PATTERN, patternHint: "use a host name like `api.example.com`" })
    ?.toLowerCase();
  const health = r.string("health", { pattern: /^\//, patternHint: 'a path starting with "/", e.g. "/healthz"' });
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
    ...optional("health", health),
    aliases,
    internal: r.boolean("internal") ?? false,
    env,
    resources: readResources(r, opts.api ?? false),
    placement: readPlacement(r),
    ...optional("readiness", readProbe(r, "readiness")),
    ...optional("liveness", readProbe(r, "liveness")),
    wasm: readWasm(r, opts.api ?? false),
    limits: readLimits(r),
  };
  r.done();
  return spec;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function readResources(parent: TableReader, api: boolean): ServiceSpec["resources"] {
  const r = parent.table("resources");
  if (!r) return {};
  const memoryText = r.raw("memory");
  let memory: number | undefined;
  if (memoryText !== undefined) {
    // In service.toml a size is written as text; the API carries the parsed byte count.
    memory = typeof memoryText === "string"
      ? parseMemory(memoryText)
      : api && Number.isSafeInteger(memoryText) && (memoryText as number) > 0
      ? memoryText as number
      : undefined;
    if (memory === undefined) {
      throw r.error(
        r.path("memory"),
        `is not a valid size: ${JSON.stringify(memoryText)}`,
        'write it like "512Mi", "1Gi" or "64M"',
      );
    }
  }
  const cpu = r.number("cpu", { min: 0.001, max: 1024 });
  const g = r.table("gpu");
  let gpu: GpuRequest | undefined;
  if (g) {
    gpu = {
      count: g.number("count", { integer: true, min: 1, max: 64 }) ?? 1,
      vendor: (g.string("vendor", { pattern: /^(nvidia|amd)$/, patternHint: 'use "nvidia" or "amd"' }) ??
        "nvidia") as GpuRequest["vendor"],
      ...optional("vram_min", g.number("vram_min", { integer: true, min: 1 })),
    };
    g.done();
  }
  r.done();
  return { ...optional("memory", memory), ...optional("cpu", cpu), ...optional("gpu", gpu) };
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
  const probe: Probe = {
    path: r.string("path", { required: true, pattern: /^\//, patternHint: 'a path starting with "/"' })!,
    interval_secs: r.number("interval_secs", { min: 1 }) ?? (key === "readiness" ? 5 : 10),
    timeout_secs: r.number("timeout_secs", { min: 1 }) ?? 3,
    failure_threshold: r.number("failure_threshold", { integer: true, min: 1 }) ?? 3,
    initial_delay_secs: r.number("initial_delay_secs", { min: 0 }) ?? 0,
  };
  r.done();
  return probe;
}

function readLimits(parent: TableReader): ServiceSpec["limits"] {
  const r = parent.table("limits");
  if (!r) return {};
  const limits = optional("timeout_ms", r.number("timeout_ms", { integer: true, min: 1, max: 3_600_000 }));
  r.done();
  return limits;
}

function readWasm(parent: TableReader, api: boolean): ServiceSpec["wasm"] {
  const r = parent.table("wasm");
  if (!r) return { allowed_hosts: [], files: {} };
  const hosts = r.strings("allowed_hosts") ?? [];
  hosts.forEach((h, i) => {
    if (!HOST_PATTERN.test(h)) {
      throw r.error(
        [...r.path("allowed_hosts"), i],
        `has an invalid host ${JSON.stringify(h)}`,
        'write "api.example.com" or "127.0.0.1:9000"',
      );
    }
  });
  const files: Record<string, FileMount> = {};
  const table = r.raw("files");
  if (table !== undefined) {
    if (typeof table !== "object" || table === null || Array.isArray(table)) {
      throw r.error(r.path("files"), 'must be a table like { "/data" = "./data" }');
    }
    for (const [guest, value] of Object.entries(table)) {
      const at = [...r.path("files"), guest];
      if (!/^\/[A-Za-z0-9._\/-]*$/.test(guest) || guest.split("/").includes("..")) {
        throw r.error(at, "is not an absolute guest path without `..`", 'e.g. "/data"');
      }
      files[guest] = readMount(r, at, value, api);
    }
  }
  r.done();
  return { allowed_hosts: hosts, files };
}

function readMount(r: TableReader, at: (string | number)[], value: unknown, api: boolean): FileMount {
  if (api) {
    const m = (typeof value === "object" && value !== null ? value : {}) as Partial<FileMount>;
    const treeOk = m.tree && typeof m.tree === "object" &&
      Object.entries(m.tree).every(([p, h]) =>
        typeof h === "string" && /^[0-9a-f]{64}$/.test(h) && !p.split("/").includes("..")
      );
    if (typeof m.source !== "string" || typeof m.rw !== "boolean" || !treeOk) {
      throw r.error(at, "must be {source, rw, tree} with sha256 file hashes");
    }
    return { source: m.source, rw: m.rw, tree: { ...m.tree } };
  }
  if (typeof value !== "string" || !value) throw r.error(at, 'must be a folder, e.g. "./data" or "./data:rw"');
  const rw = value.endsWith(":rw");
  return { source: rw ? value.slice(0, -3) : value.replace(/:ro$/, ""), rw };
}
