/**
 * Builds every example and test guest from source, offline:
 *   X.js  -> X.wasm  componentize-js (wasi:http/incoming-handler component)
 *   X.c   -> X.wasm  Debian clang-14 + wasi-libc (WASI preview1 command)
 *   X.handler.c -> X.handler.wasm  the same as a reactor, made a component of wit/orca-jobs.wit
 *   X.wat -> X.wasm  wabt (npm)
 *   X.http.wat -> X.http.wasm  the same, made a wasi:http component (the incoming-handler world of prepareWit)
 * Results are cached by the hash of source + toolchain under .cache/build/.
 * Missing Debian packages are installed when running as root.
 */

import { sha256Hex } from "../config/mod.ts";

const root = new URL("..", import.meta.url).pathname;
const cacheDir = `${root}.cache/build`;
const dirs = ["examples/services", "tests/fixtures/guests"];
const clangFlags = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Werror", "-Wl,--strip-all"];
const debianPackages = ["clang-14", "lld-14", "wasi-libc", "libclang-rt-14-dev-wasm32"];

async function main(): Promise<void> {
  await Deno.mkdir(cacheDir, { recursive: true });
  const sources = await findSources();
  let built = 0;
  for (const src of sources) {
    const out = src.replace(/\.(js|c|wat)$/, ".wasm");
    const text = await Deno.readFile(src);
    const kind = src.endsWith(".handler.c")
      ? "handler"
      : src.endsWith(".http.wat")
      ? "http-wat"
      : src.slice(src.lastIndexOf(".") + 1);
    const key = await sha256Hex(
      new TextEncoder().encode(`${kind}|${await toolchainId(kind)}|${await sha256Hex(text)}`),
    );
    const cached = `${cacheDir}/${key}.wasm`;
    if (!(await exists(cached))) {
      const t = performance.now();
      const bytes = kind === "js"
        ? await buildJs(src)
        : kind === "c"
        ? await buildC(src)
        : kind === "handler"
        ? await buildHandler(src)
        : kind === "http-wat"
        ? await buildHttpWat(src)
        : await buildWat(src);
      await Deno.writeFile(`${cached}.tmp`, bytes);
      await Deno.rename(`${cached}.tmp`, cached);
      console.error(
        `built ${rel(out)} (${kind}, ${(bytes.length / 1024).toFixed(0)} KiB, ${
          (performance.now() - t).toFixed(0)
        } ms)`,
      );
      built++;
    }
    await Deno.copyFile(cached, out);
  }
  console.error(`examples: ${sources.length} guests ready (${built} built, ${sources.length - built} cached)`);
}

async function findSources(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (/\.(js|c|wat)$/.test(e.name)) found.push(path);
    }
  };
  for (const d of dirs) if (await exists(`${root}${d}`)) await walk(`${root}${d}`);
  return found.sort();
}

const toolchainIds = new Map<string, string>();
async function toolchainId(kind: string): Promise<string> {
  if (!toolchainIds.has(kind)) {
    let id = "";
    if (kind === "js") {
      const pkg = JSON.parse(
        await Deno.readTextFile(`${root}node_modules/@bytecodealliance/componentize-js/package.json`),
      );
      id = `componentize-js ${pkg.version} wasi@0.2.10 edge-world-v1`;
    } else if (kind === "c" || kind === "handler") {
      await ensureClang();
      id = `${(await run("clang-14", ["--version"])).split("\n")[0]} ${clangFlags.join(" ")}`;
    } else {
      id = "wabt-npm";
    }
    toolchainIds.set(kind, id);
  }
  return toolchainIds.get(kind)!;
}

async function buildC(src: string, extra: string[] = []): Promise<Uint8Array> {
  const out = `${cacheDir}/c-${crypto.randomUUID()}.wasm`;
  await run("clang-14", [...clangFlags, ...extra, src, "-o", out]);
  const bytes = await Deno.readFile(out);
  await Deno.remove(out);
  return bytes;
}

/** A C message handler: a reactor core module, embedded with wit/orca-jobs.wit, adapted to a component. */
async function buildHandler(src: string): Promise<Uint8Array> {
  const core = await buildC(src, ["-mexec-model=reactor"]);
  const { componentEmbed, componentNew } = await import("@bytecodealliance/jco-transpile/wasm-tools");
  const witSource = await Deno.readTextFile(`${root}wit/orca-jobs.wit`);
  const embedded = await componentEmbed(
    { binary: core, witSource, world: "message-handler" } as Parameters<typeof componentEmbed>[0],
  );
  const adapter = await Deno.readFile(
    `${root}node_modules/@bytecodealliance/jco/lib/wasi_snapshot_preview1.reactor.wasm`,
  );
  return await componentNew(embedded, [["wasi_snapshot_preview1", adapter]]);
}

async function buildWat(src: string): Promise<Uint8Array> {
  const { default: initWabt } = await import("wabt");
  const wabt = await initWabt();
  const module = wabt.parseWat(src, await Deno.readTextFile(src));
  try {
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/** A hand-written wasi:http handler: the core module, embedded with the incoming-handler world, made a component. */
async function buildHttpWat(src: string): Promise<Uint8Array> {
  const core = await buildWat(src);
  const wit = await prepareWit();
  // wit-component reads the WIT folder through WASI: this build process lets it see the files.
  const { _setPreopens } = await import("@bytecodealliance/preview2-shim/filesystem") as unknown as {
    _setPreopens(preopens: Record<string, string>): void; // the node flavour's (the default types are the browser's)
  };
  _setPreopens({ "/": "/" });
  const { componentEmbed, componentNew } = await import("@bytecodealliance/jco-transpile/wasm-tools");
  const embedded = await componentEmbed(
    { binary: core, witPath: wit, world: "edge" } as Parameters<
      typeof componentEmbed
    >[0],
  );
  return await componentNew(embedded, []);
}

/** componentize-js runs in a child Deno process: it leaves global state in preview2-shim. */
async function buildJs(src: string): Promise<Uint8Array> {
  const wit = await prepareWit();
  const out = `${cacheDir}/js-${crypto.randomUUID()}.wasm`;
  await run(Deno.execPath(), [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
    "--allow-ffi", // componentize-js parses JS with oxc's native binding
    `${root}scripts/componentize.ts`,
    src,
    wit,
    out,
  ]);
  const bytes = await Deno.readFile(out);
  await Deno.remove(out);
  return bytes;
}

/**
 * componentize-js's engine speaks WASI 0.2.10; jco ships the 0.2.12 WIT.
 * The interfaces we use are the same, so the package version is rewritten.
 */
async function prepareWit(): Promise<string> {
  const dir = `${cacheDir}/wit-0.2.10`;
  if (await exists(`${dir}/world.wit`)) return dir;
  const from = `${root}node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12`;
  for (const pkg of ["cli", "clocks", "filesystem", "http", "io", "random", "sockets"]) {
    await Deno.mkdir(`${dir}/deps/${pkg}`, { recursive: true });
    const text = await Deno.readTextFile(`${from}/wasi-${pkg}/package.wit`);
    await Deno.writeTextFile(`${dir}/deps/${pkg}/package.wit`, text.replaceAll("@0.2.12", "@0.2.10"));
  }
  await Deno.writeTextFile(
    `${dir}/world.wit`,
    "package orca:edge;\n\nworld edge {\n  import wasi:http/outgoing-handler@0.2.10;\n  export wasi:http/incoming-handler@0.2.10;\n}\n",
  );
  return dir;
}

async function ensureClang(): Promise<void> {
  const missing = [];
  for (const pkg of debianPackages) {
    const status = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Status}", pkg],
      stdout: "piped",
      stderr: "null",
    })
      .output().catch(() => undefined);
    if (!status || !new TextDecoder().decode(status.stdout).includes("install ok installed")) missing.push(pkg);
  }
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new Error(
      `C guests need Debian packages ${missing.join(", ")}: run sudo apt-get install -y ${missing.join(" ")}`,
    );
  }
  console.error(`installing ${missing.join(", ")} (apt-get)`);
  await run("apt-get", ["update", "-qq"]).catch(() => "");
  await run("apt-get", ["install", "-y", "-qq", ...missing], { DEBIAN_FRONTEND: "noninteractive" });
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}${
        new TextDecoder().decode(out.stdout)
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function rel(path: string): string {
  return path.startsWith(root) ? path.slice(root.length) : path;
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
