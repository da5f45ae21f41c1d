/**
 * Runs workerd (npm `workerd`, offline) serving a component Orca transpiled:
 * the same glue and core modules from Orca's cache, preview2-shim's browser
 * files, and worker.js beside this file. For side-by-side benchmarks.
 */

const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;
const shimDir = `${root}node_modules/@bytecodealliance/preview2-shim/dist/browser`;

export interface Workerd {
  url: string;
  close(): Promise<void>;
}

/** Starts workerd on 127.0.0.1:`port` for the transpiled component in `transpiledDir`. */
export async function startWorkerd(
  opts: { transpiledDir: string; port: number; kind: "http" | "wagi" },
): Promise<Workerd> {
  const dir = await Deno.makeTempDir({ prefix: "orca-workerd-" });
  await Deno.mkdir(`${dir}/shim`);
  const modules: string[] = [`(name = "worker.js", esModule = embed "worker.js")`];
  await Deno.copyFile(`${here}worker.js`, `${dir}/worker.js`);
  for (const e of Deno.readDirSync(shimDir)) {
    if (!e.name.endsWith(".js")) continue;
    await Deno.copyFile(`${shimDir}/${e.name}`, `${dir}/shim/${e.name}`);
    modules.push(`(name = "shim/${e.name}", esModule = embed "shim/${e.name}")`);
  }
  const glue = await Deno.readTextFile(`${opts.transpiledDir}/component.js`);
  await Deno.writeTextFile(
    `${dir}/component.js`,
    glue.replaceAll("if (!globalThis?.process?.env?.JCO_DEBUG) { return; }", "return;"),
  );
  modules.push(`(name = "component.js", esModule = embed "component.js")`);
  const cores = [...Deno.readDirSync(opts.transpiledDir)].map((e) => e.name).filter((n) => n.endsWith(".wasm")).sort();
  for (const core of cores) {
    await Deno.copyFile(`${opts.transpiledDir}/${core}`, `${dir}/${core}`);
    modules.push(`(name = "${core}", wasm = embed "${core}")`);
  }
  // workerd gives precompiled modules as imports; the glue asks for them by name.
  await Deno.writeTextFile(
    `${dir}/cores.js`,
    cores.map((c, i) => `import m${i} from "./${c}";`).join("\n") +
      `\nexport const cores = { ${
        cores.map((c, i) => `${JSON.stringify(c)}: m${i}`).join(", ")
      } };\nexport const kind = ${JSON.stringify(opts.kind)};\n`,
  );
  modules.push(`(name = "cores.js", esModule = embed "cores.js")`);
  await Deno.writeTextFile(
    `${dir}/config.capnp`,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${opts.port}", http = (), service = "main") ],
);
const w :Workerd.Worker = (
  modules = [ ${modules.join(",\n    ")} ],
  compatibilityDate = "2025-01-01",
);
`,
  );
  const child = new Deno.Command(`${root}node_modules/.bin/workerd`, {
    args: ["serve", `${dir}/config.capnp`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = `http://127.0.0.1:${opts.port}`;
  const close = async () => {
    try {
      child.kill();
    } catch {
      // already gone
    }
    await child.status;
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/`);
      await res.body?.cancel();
      return { url, close };
    } catch {
      if (Date.now() > deadline) {
        await close();
        throw new Error("workerd did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
