/**
 * What service.toml points at on disk: modules and the folders of
 * `[service.wasm] files`. A mount is served to anyone through its guest, so
 * it must lie inside the folder that holds service.toml once every symbolic
 * link is resolved, and so must every link inside it; anything else fails the
 * deploy, naming file, line, service and field. A module is code the server
 * checks before it runs, so it may live anywhere (a build folder, say), but it
 * must be a readable file that starts like WebAssembly: nothing else is sent.
 */

import type { KeyPath } from "./locate.ts";
import { fieldError, quote, type Source } from "./reader.ts";
import { MAX_MOUNT_FILES } from "./service.ts";

/** A file read from disk, addressed by the sha256 of its bytes. */
export interface ModuleFile {
  hash: string;
  path: string;
  bytes: Uint8Array;
}

/** The field a path came from, for errors. */
export interface FieldAt {
  source: Source;
  path: KeyPath;
}

/** The most bytes one mount may hold. */
export const MAX_MOUNT_BYTES = 64 * 2 ** 20;

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Reads the module at `path`: a regular file that starts with `\0asm`. */
export async function readModule(path: string, at: FieldAt): Promise<ModuleFile> {
  const hint = "build the module first, or fix the `module` path (it is relative to service.toml)";
  const info = await fsCall(() => Deno.stat(path), at, path, hint);
  if (info.isDirectory) throw fieldError(at.source, at.path, `is a folder, not a module file: ${quote(path)}`, hint);
  if (!info.isFile) {
    throw fieldError(at.source, at.path, `is not a regular file (a device, pipe or socket): ${quote(path)}`, hint);
  }
  const bytes = await fsCall(() => Deno.readFile(path), at, path, hint);
  if (WASM_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw fieldError(
      at.source,
      at.path,
      `is not WebAssembly (no \`\\0asm\` header): ${quote(path)}`,
      "point `module` at a .wasm file built for WASI (a component or a preview1 core module)",
    );
  }
  return { hash: await sha256Hex(bytes), path, bytes };
}

/**
 * Reads every file of the mount folder `source` (relative to `projectDir`, or
 * absolute) into `blobs`; returns `relative path -> sha256`. Links are
 * followed only where they lead inside the project folder.
 */
export async function readMountFolder(
  projectDir: string,
  source: string,
  at: FieldAt,
  blobs: Map<string, ModuleFile>,
): Promise<Record<string, string>> {
  const hint = "a mount is a folder beside service.toml; copy what it needs there (links may not lead outside)";
  const fail = (message: string): never => {
    throw fieldError(at.source, at.path, message, hint);
  };
  const project = await fsCall(() => Deno.realPath(projectDir), at, projectDir, hint);
  // Written out of the project (`../../etc`) fails whether or not it exists; then links are resolved and checked.
  const given = normalize(source.startsWith("/") ? source : `${project}/${source}`);
  const outside = (path: string) =>
    fail(`leads outside the project folder: ${quote(source)} is ${quote(path)}, not inside ${quote(project)}`);
  if (!inside(project, given)) outside(given);
  const notFoundHint = "`[service.wasm] files` paths are relative to service.toml";
  const root = await fsCall(() => Deno.realPath(given), at, given, notFoundHint);
  if (!inside(project, root)) outside(root);
  const rootInfo = await fsCall(() => Deno.stat(root), at, root, hint);
  if (!rootInfo.isDirectory) fail(`is not a folder: ${quote(source)}`);

  const tree: Record<string, string> = {};
  let files = 0, folders = 0, bytes = 0;
  const addFile = async (path: string, rel: string, size: number) => {
    if (++files > MAX_MOUNT_FILES) fail(`holds more than ${MAX_MOUNT_FILES} files`);
    bytes += size;
    if (bytes > MAX_MOUNT_BYTES) fail(`holds more than ${MAX_MOUNT_BYTES / 2 ** 20} MiB`);
    const content = await fsCall(() => Deno.readFile(path), at, path, hint);
    const hash = await sha256Hex(content);
    tree[rel] = hash;
    blobs.set(hash, { hash, path, bytes: content });
  };
  // `stack`: the real folders being walked, to refuse a link back into one of them (a loop).
  const walk = async (dir: string, rel: string, stack: string[]): Promise<void> => {
    if (++folders > MAX_MOUNT_FILES) fail(`holds more than ${MAX_MOUNT_FILES} folders`);
    const list = await fsCall(() => Array.fromAsync(Deno.readDir(dir)), at, dir, hint);
    list.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of list) {
      const path = `${dir}/${e.name}`;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      const shown = quote(`${source.replace(/\/+$/, "")}/${relPath}`);
      if (e.isDirectory) {
        await walk(path, relPath, [...stack, path]);
      } else if (e.isFile) {
        await addFile(path, relPath, (await fsCall(() => Deno.stat(path), at, path, hint)).size);
      } else if (e.isSymlink) {
        const target = await linkTarget(path, at, shown, hint);
        if (!inside(project, target)) {
          fail(`holds ${shown}, a symbolic link to ${quote(target)}, outside the project folder ${quote(project)}`);
        }
        const info = await fsCall(() => Deno.stat(target), at, target, hint);
        if (info.isDirectory) {
          if (stack.includes(target)) fail(`holds ${shown}, a symbolic link to a folder that contains it (a loop)`);
          await walk(target, relPath, [...stack, target]);
        } else if (info.isFile) {
          await addFile(target, relPath, info.size);
        } else {
          fail(`holds ${shown}, a link to something that is not a regular file or folder`);
        }
      } else {
        fail(`holds ${shown}, which is not a regular file or folder (a device, pipe or socket)`);
      }
    }
  };
  await walk(root, "", [root]);
  return tree;
}

/** Where a link finally leads, or a located error for a broken one. */
async function linkTarget(path: string, at: FieldAt, shown: string, hint: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw fsError(err, at, path, hint);
    const to = await Deno.readLink(path).catch(() => "?");
    throw fieldError(at.source, at.path, `holds ${shown}, a broken symbolic link (to ${quote(to)})`, hint);
  }
}

/** An absolute path with `.`, `..` and repeated slashes resolved as text. */
function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "" && part !== ".") out.push(part);
  }
  return `/${out.join("/")}`;
}

/** Whether `child` is `parent` or below it (both real, absolute paths). */
export function inside(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : `${parent}/`);
}

/** Runs a filesystem call; any failure becomes a config error naming the field and the path. */
async function fsCall<T>(call: () => Promise<T>, at: FieldAt, path: string, hint: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw fsError(err, at, path, hint);
  }
}

function fsError(err: unknown, at: FieldAt, path: string, hint: string): unknown {
  if (!(err instanceof Error)) return err;
  const why = err instanceof Deno.errors.NotFound
    ? "not found"
    : err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable
    ? "cannot be read (permission denied)"
    : `cannot be read (${err.message})`;
  return fieldError(at.source, at.path, `${why}: ${quote(path)}`, hint, err);
}

/** Hex sha256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
