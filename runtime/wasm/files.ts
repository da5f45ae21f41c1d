/**
 * `[service.wasm] files`: host folders a guest may see, as in-memory trees
 * shipped with the deploy. Read-only mounts refuse every change; `rw` mounts
 * give each instance its own copy, thrown away with the instance. Nothing
 * else of any filesystem exists for the guest.
 */

// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/filesystem.d.ts"
import * as filesystem from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/filesystem.js";

export type FileEntry = { dir: Record<string, FileEntry> } | { source: Uint8Array };

export interface Mount {
  guestPath: string;
  tree: FileEntry;
  rw: boolean;
}

/** Builds a tree from `relative/path -> bytes`. */
export function buildTree(files: Iterable<[string, Uint8Array]>): FileEntry {
  const root: { dir: Record<string, FileEntry> } = { dir: emptyDir() };
  for (const [path, bytes] of files) {
    const parts = path.split("/").filter(Boolean);
    let dir = root;
    for (const part of parts.slice(0, -1)) {
      const next = Object.hasOwn(dir.dir, part) ? dir.dir[part] : undefined;
      dir = next && "dir" in next ? next : (dir.dir[part] = { dir: emptyDir() }) as { dir: Record<string, FileEntry> };
    }
    dir.dir[parts[parts.length - 1]] = { source: bytes };
  }
  return root;
}

function cloneTree(e: FileEntry): FileEntry {
  if ("source" in e) return { source: e.source.slice() };
  const dir = emptyDir();
  for (const [name, entry] of Object.entries(e.dir)) dir[name] = cloneTree(entry);
  return { dir };
}

/** A folder's entries by name, with no prototype: a file may be called `__proto__` or `constructor`. */
function emptyDir(): Record<string, FileEntry> {
  return Object.create(null);
}

type Impl = ReturnType<InstanceType<typeof filesystem.InMemoryFilesystemAdapter>["getRoot"]>;

const MUTATORS = new Set([
  "writeViaStream",
  "appendViaStream",
  "setSize",
  "setTimes",
  "write",
  "createDirectoryAt",
  "setTimesAt",
  "linkAt",
  "removeDirectoryAt",
  "renameAt",
  "symlinkAt",
  "unlinkFileAt",
  "syncData",
  "sync",
]);

/**
 * A read-only view of an in-memory descriptor: changes throw WASI's
 * `read-only`, opening asks for no write, and what it opens is read-only too.
 * Calls go to the inner descriptor as `this` (its fields are private).
 */
function readOnly(inner: Impl): Impl {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "getFlags") return () => ({ read: true });
      if (prop === "openAt") {
        return (
          pathFlags: unknown,
          path: string,
          openFlags: Record<string, boolean>,
          flags: Record<string, boolean>,
        ) => {
          if (openFlags.create || openFlags.truncate || flags.write || flags.mutateDirectory) throw "read-only";
          return readOnly(target.openAt(pathFlags as never, path, openFlags as never, flags as never));
        };
      }
      if (typeof prop === "string" && MUTATORS.has(prop)) {
        return () => {
          throw "read-only";
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Impl;
}

/** The wasi:filesystem namespaces for an instance with these mounts. */
export function mountFilesystem(mounts: readonly Mount[]): { preopens: unknown; types: unknown } {
  const memory = new filesystem.InMemoryFilesystemAdapter();
  const adapter = {
    getRoot(m: Mount) {
      return m.rw ? memory.getRoot(cloneTree(m.tree) as never) : readOnly(memory.getRoot(m.tree as never));
    },
  };
  const fs = filesystem.createFilesystem({
    adapter,
    preopens: Object.fromEntries(mounts.map((m) => [m.guestPath, m])),
  });
  return { preopens: fs.preopens, types: fs.types };
}
