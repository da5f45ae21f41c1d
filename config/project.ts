/**
 * Discovers a deployable folder: optional cluster.toml plus
 * services/<project>/service.toml, reading every module it names.
 */

import { OrcaError } from "../errors.ts";
import { defaultCluster, parseClusterFile } from "./cluster.ts";
import { NAME_PATTERN, parseServiceFile } from "./service.ts";
import type { ClusterConfig, ServiceSpec } from "./types.ts";

/** A module read from disk, addressed by the sha256 of its bytes. */
export interface ModuleFile {
  hash: string;
  path: string;
  bytes: Uint8Array;
}

/** Everything `orca deploy DIR` sends to the server. */
export interface ProjectBundle {
  cluster: ClusterConfig;
  /** Project names found, each with its services. */
  projects: Map<string, ServiceSpec[]>;
  modules: Map<string, ModuleFile>;
  /** Files of `[service.wasm] files` folders, by sha256. */
  blobs: Map<string, ModuleFile>;
}

/** What one deploy may carry in mounted files. */
const MAX_MOUNT_FILES = 10_000;
const MAX_MOUNT_BYTES = 64 * 2 ** 20;

/** Reads `dir`: cluster.toml (optional) and services/*\/service.toml. */
export async function loadProject(dir: string): Promise<ProjectBundle> {
  const servicesDir = join(dir, "services");
  const clusterFile = join(dir, "cluster.toml");
  const clusterText = await readTextIfExists(clusterFile);
  const cluster = clusterText === undefined ? defaultCluster : parseClusterFile(clusterText, clusterFile);

  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(servicesDir)].sort((a, b) => a.name.localeCompare(b.name));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OrcaError("config", `no services/ folder in ${dir}`, {
        where: servicesDir,
        hint: "create services/<project>/service.toml, or pass the folder that holds services/",
      });
    }
    throw err;
  }

  const projects = new Map<string, ServiceSpec[]>();
  const modules = new Map<string, ModuleFile>();
  const blobs = new Map<string, ModuleFile>();
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const file = join(servicesDir, entry.name, "service.toml");
    const text = await readTextIfExists(file);
    if (text === undefined) continue;
    if (!NAME_PATTERN.test(entry.name)) {
      throw new OrcaError("config", `project folder name "${entry.name}" is not a valid project name`, {
        where: join(servicesDir, entry.name),
        hint: "use lowercase letters, digits and dashes",
      });
    }
    const services = parseServiceFile(text, file, entry.name);
    for (const service of services) {
      if (!service.module) continue;
      const path = service.module.startsWith("/") ? service.module : join(servicesDir, entry.name, service.module);
      const module = await readModule(path, file, service.name);
      service.module_hash = module.hash;
      modules.set(module.hash, module);
    }
    for (const service of services) {
      for (const [guestPath, mount] of Object.entries(service.wasm.files)) {
        const base = mount.source.startsWith("/") ? mount.source : join(servicesDir, entry.name, mount.source);
        mount.tree = await readFolder(base, file, service.name, guestPath, blobs);
      }
    }
    projects.set(entry.name, services);
  }
  if (projects.size === 0) {
    throw new OrcaError("config", `no service.toml found under ${servicesDir}`, {
      where: servicesDir,
      hint: "each project is a folder services/<project>/ with a service.toml",
    });
  }
  return { cluster, projects, modules, blobs };
}

/** Reads every file under `base` into `blobs`; returns `relative path -> sha256`. */
async function readFolder(
  base: string,
  file: string,
  service: string,
  guestPath: string,
  blobs: Map<string, ModuleFile>,
): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  let count = 0, bytes = 0;
  const walk = async (dir: string, rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        throw new OrcaError("config", `service "${service}": folder for ${guestPath} not found: ${dir}`, {
          where: file,
          hint: "`[service.wasm] files` paths are relative to service.toml",
        });
      }
      throw err;
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path, relPath);
      else if (e.isFile) {
        const content = await Deno.readFile(path);
        count++;
        bytes += content.length;
        if (count > MAX_MOUNT_FILES || bytes > MAX_MOUNT_BYTES) {
          throw new OrcaError("config", `service "${service}": ${guestPath} holds more than 10,000 files or 64 MiB`, {
            where: file,
            hint: "mount a smaller folder; large data belongs in a container volume or a database",
          });
        }
        const hash = await sha256Hex(content);
        tree[relPath] = hash;
        blobs.set(hash, { hash, path, bytes: content });
      } // links and devices are left out: a mount holds plain files only
    }
  };
  await walk(base, "");
  return tree;
}

async function readModule(path: string, file: string, service: string): Promise<ModuleFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OrcaError("config", `service "${service}": module file not found: ${path}`, {
        where: file,
        hint: "build the module first, or fix the `module` path (it is relative to service.toml)",
      });
    }
    throw err;
  }
  return { hash: await sha256Hex(bytes), path, bytes };
}

/** Hex sha256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

function join(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}
