/**
 * Discovers a deployable folder: optional cluster.toml plus
 * services/<project>/service.toml, reading every module it names.
 */

import { OrcaError } from "../errors.ts";
import { defaultCluster, parseClusterFile } from "./cluster.ts";
import { type FieldAt, type ModuleFile, readModule, readMountFolder } from "./files.ts";
import type { KeyPath } from "./locate.ts";
import { readTlsFiles } from "./tls.ts";
import { NAME_PATTERN, parseServiceFile } from "./service.ts";
import type { ClusterConfig, ServiceSpec } from "./types.ts";

/** Everything `orca deploy DIR` sends to the server. */
export interface ProjectBundle {
  cluster: ClusterConfig;
  /** Project names found, each with its services. */
  projects: Map<string, ServiceSpec[]>;
  modules: Map<string, ModuleFile>;
  /** Files of `[service.wasm] files` folders, by sha256. */
  blobs: Map<string, ModuleFile>;
}

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
    const projectDir = join(servicesDir, entry.name);
    // Service i is the i-th [[service]] block: errors point at its fields' lines.
    const at = (i: number, path: KeyPath): FieldAt => ({
      source: { file, text, subject: `service "${services[i].name}"`, subjectDepth: 2 },
      path: ["service", i, ...path],
    });
    for (const [i, service] of services.entries()) {
      if (!service.module) continue;
      const path = service.module.startsWith("/") ? service.module : join(projectDir, service.module);
      const module = await readModule(path, at(i, ["module"]));
      service.module_hash = module.hash;
      modules.set(module.hash, module);
    }
    for (const [i, service] of services.entries()) {
      await readTlsFiles(projectDir, service, at(i, ["tls"]));
      for (const [guestPath, mount] of Object.entries(service.wasm.files)) {
        mount.tree = await readMountFolder(projectDir, mount.source, at(i, ["wasm", "files", guestPath]), blobs);
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
