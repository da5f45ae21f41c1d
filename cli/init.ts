/** `orca init`: a deployable folder to start from, that `orca deploy` takes as it is. */

import { basename, resolve } from "node:path";
import { OrcaError } from "../errors.ts";
import { type Command, type Values } from "./command.ts";

/** Where the templates' sources and built modules are (the examples; `deno task compile` includes them). */
const EXAMPLES = new URL("../examples/services/", import.meta.url);

const TEMPLATES = ["js", "c", "container"] as const;
type Template = typeof TEMPLATES[number];

export const initCommand: Command = {
  name: "init",
  summary: "Write a deployable folder (service.toml, source, module) to start from.",
  usage: "orca init [DIR] [--template js|c|container] [--name NAME] [--project P] [--image IMAGE] [--force]",
  flags: [
    "--template T      js (an edge function in JavaScript, the default), c (one in C), container (an image)",
    "--name NAME       the service's name (default hello; web for a container)",
    "--project P       the project folder under services/ (default: DIR's name, else app)",
    "--image IMAGE     the container template's image (default nginx:alpine)",
    "--force           write over a service.toml that is there",
  ],
  options: {
    template: { type: "string" },
    name: { type: "string" },
    project: { type: "string" },
    image: { type: "string" },
    force: { type: "boolean" },
  },
  maxArgs: 1,
  async run(values, args) {
    const dir = args[0] ?? ".";
    const template = (values.template as string | undefined) ?? "js";
    if (!TEMPLATES.includes(template as Template)) {
      throw new OrcaError("usage", `--template must be js, c or container; got ${JSON.stringify(template)}`);
    }
    const name = checked(values.name as string | undefined ?? (template === "container" ? "web" : "hello"), "--name");
    const project = checked(
      values.project as string | undefined ?? projectOf(dir),
      "--project",
    );
    const folder = `${dir}/services/${project}`;
    const tomlPath = `${folder}/service.toml`;
    // One that cannot be read is no better: writing it would fail too, saying why.
    if (!values.force && await Deno.lstat(tomlPath).then(() => true, () => false)) {
      throw new OrcaError("usage", `${tomlPath} is there already; nothing was written`, {
        hint: "pick another --project or --name, or pass --force to write over it",
      });
    }
    const written = await write(template as Template, folder, name, values);
    console.log(`wrote ${written.map((f) => `${folder}/${f}`).join(", ")}`);
    console.log(`deploy it: orca deploy ${dir}`);
    const route = template === "container" ? `/${name}/` : `/${name}`;
    console.log(`then: curl http://127.0.0.1${route} (the proxy's address; orca status lists the routes)`);
    return 0;
  },
};

async function write(template: Template, folder: string, name: string, values: Values): Promise<string[]> {
  await Deno.mkdir(folder, { recursive: true });
  if (template === "container") {
    const image = (values.image as string | undefined) ?? "nginx:alpine";
    if (!/^[A-Za-z0-9][A-Za-z0-9._\/:@-]{0,254}$/.test(image)) {
      throw new OrcaError("usage", "--image is not an image name");
    }
    await Deno.writeTextFile(
      `${folder}/service.toml`,
      `# ${name}: a container, for what Wasm cannot serve (an existing image, a database, a GPU job).\n` +
        `# The proxy routes /${name}/... to its port; more keys: the README's service.toml reference.\n` +
        `[[service]]\nname = "${name}"\nimage = "${image}"\nport = 80\ntriggers = ["http:/${name}/*"]\n\n` +
        `[service.resources]\nmemory = "128Mi"\ncpu = 0.5\n`,
    );
    return ["service.toml"];
  }
  const example = template === "js" ? "hello-js" : "hello-c";
  const source = template === "js" ? "hello.js" : "hello.c";
  const ext = template === "js" ? "js" : "c";
  await Deno.copyFile(new URL(`${example}/${source}`, EXAMPLES), `${folder}/${name}.${ext}`);
  let built = true;
  try {
    await Deno.copyFile(new URL(`${example}/hello.wasm`, EXAMPLES), `${folder}/${name}.wasm`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    built = false;
  }
  const build = template === "js"
    ? `componentize-js ${name}.js, world wasi:http/incoming-handler (jco componentize ${name}.js -o ${name}.wasm ...)`
    : `clang --target=wasm32-wasi --sysroot=/usr -O2 ${name}.c -o ${name}.wasm (Debian: clang-14 lld-14 wasi-libc)`;
  const what = template === "js"
    ? "an edge function in JavaScript (a wasi:http component)"
    : "an edge function in C (a WASI command answering as CGI)";
  await Deno.writeTextFile(
    `${folder}/service.toml`,
    `# ${name}: ${what}.\n# After editing ${name}.${ext}, rebuild ${name}.wasm: ${build}\n` +
      `[[service]]\nname = "${name}"\nmodule = "${name}.wasm"\n` +
      `triggers = ["http:/${name}", "http:/${name}/greet/:name"]\n`,
  );
  if (!built) {
    console.error(`orca: no built module to copy here; build ${name}.wasm before deploying: ${build}`);
    return ["service.toml", `${name}.${ext}`];
  }
  return ["service.toml", `${name}.${ext}`, `${name}.wasm`];
}

/** A name made of a folder's: lowercase letters, digits and dashes. */
function projectOf(dir: string): string {
  const base = basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(base) ? base : "app";
}

function checked(value: string, flag: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(value)) {
    throw new OrcaError("usage", `${flag} must be lowercase letters, digits and dashes; got ${JSON.stringify(value)}`);
  }
  return value;
}
