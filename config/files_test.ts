import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";
import { loadProject } from "./project.ts";

const WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/** A folder with services/web/service.toml (`toml`), a hello.wasm beside it, and a secret outside the project. */
async function project(toml: string): Promise<{ root: string; web: string; outside: string }> {
  const root = await Deno.makeTempDir({ prefix: "orca-files-" });
  const web = `${root}/services/web`;
  await Deno.mkdir(`${web}/data/sub`, { recursive: true });
  await Deno.writeFile(`${web}/hello.wasm`, WASM);
  await Deno.writeTextFile(`${web}/data/a.txt`, "a\n");
  await Deno.writeTextFile(`${web}/data/sub/b.txt`, "b\n");
  await Deno.writeTextFile(`${web}/service.toml`, toml);
  const outside = `${root}/outside`;
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/shadow`, "root:secret\n");
  return { root, web, outside };
}

const mounting = (files: string) =>
  `[[service]]\nname = "api"\nmodule = "hello.wasm"\ntriggers = ["http:/api"]\n[service.wasm]\nfiles = ${files}\n`;

async function deployError(root: string): Promise<OrcaError> {
  try {
    await loadProject(root);
  } catch (err) {
    assert.ok(err instanceof OrcaError, `expected OrcaError, got ${err}`);
    assert.equal(err.code, "config");
    return err;
  }
  assert.fail("expected the deploy to fail");
}

/** File, line, service and field are all named. */
function assertLocated(err: OrcaError, line: number, field: RegExp) {
  assert.match(err.where ?? "", new RegExp(`services/web/service\\.toml:${line}$`));
  assert.match(err.message, /^service "api": /);
  assert.match(err.message, field);
}

Deno.test("a mount inside the project is read whole, links inside it followed", async () => {
  const { root, web } = await project(mounting(`{ "/data" = "./data", "/tmp" = "scratch:rw" }`));
  await Deno.mkdir(`${web}/scratch`);
  await Deno.symlink(`${web}/data/a.txt`, `${web}/data/alias.txt`);
  await Deno.symlink("../data/sub", `${web}/scratch/linked`);
  const bundle = await loadProject(root);
  const [api] = bundle.projects.get("web")!;
  assert.deepEqual(Object.keys(api.wasm.files["/data"].tree!).sort(), ["a.txt", "alias.txt", "sub/b.txt"]);
  assert.deepEqual(Object.keys(api.wasm.files["/tmp"].tree!), ["linked/b.txt"]);
  assert.equal(api.wasm.files["/tmp"].rw, true);
  assert.equal(bundle.blobs.size, 2);
  assert.ok(api.module_hash && bundle.modules.has(api.module_hash));
});

Deno.test("a mount written as a path out of the project fails, naming file, line, service and field", async () => {
  const { root } = await project(mounting(`{ "/etc" = "../../../etc" }`));
  const err = await deployError(root);
  assertLocated(err, 6, /`wasm\.files\."\/etc"` leads outside the project folder: "\.\.\/\.\.\/\.\.\/etc"/);
  assert.match(err.hint ?? "", /beside service\.toml/);
});

Deno.test("an absolute mount outside the project fails; one inside it is read", async () => {
  const { root, web } = await project(mounting(`{ "/etc" = "/etc" }`));
  assertLocated(await deployError(root), 6, /`wasm\.files\."\/etc"` leads outside the project folder/);
  await Deno.writeTextFile(`${web}/service.toml`, mounting(`{ "/data" = "${web}/data" }`));
  const [api] = (await loadProject(root)).projects.get("web")!;
  assert.equal(Object.keys(api.wasm.files["/data"].tree!).length, 2);
});

Deno.test("a mount folder that is a link leading outside fails", async () => {
  const { root, web, outside } = await project(mounting(`{ "/data" = "./secrets" }`));
  await Deno.symlink(outside, `${web}/secrets`);
  const err = await deployError(root);
  assertLocated(err, 6, /leads outside the project folder: "\.\/secrets" is ".*\/outside"/);
});

Deno.test("links inside a mount that lead outside fail at any depth, files and folders alike", async () => {
  for (
    const [link, target] of [["data/shadow", "shadow"], ["data/sub/deeper/etc", ""], ["data/up", "../../../outside"]]
  ) {
    const { root, web, outside } = await project(mounting(`{ "/data" = "./data" }`));
    await Deno.mkdir(`${web}/data/sub/deeper`, { recursive: true });
    const to = target.startsWith("..") ? target : `${outside}${target ? `/${target}` : ""}`;
    await Deno.symlink(to, `${web}/${link}`);
    const err = await deployError(root);
    assertLocated(err, 6, new RegExp(`holds "\\./${link}", a symbolic link to ".*/outside.*", outside the project`));
  }
});

Deno.test("a link inside a mount to another folder of the project is followed", async () => {
  const { root, web } = await project(mounting(`{ "/data" = "./data" }`));
  await Deno.mkdir(`${web}/shared`);
  await Deno.writeTextFile(`${web}/shared/c.txt`, "c\n");
  await Deno.symlink(`${web}/shared`, `${web}/data/shared`);
  const [api] = (await loadProject(root)).projects.get("web")!;
  assert.ok("shared/c.txt" in api.wasm.files["/data"].tree!);
});

Deno.test("broken links, link loops, pipes and a file as a mount are refused, not dropped", async () => {
  const cases: [string, (web: string) => Promise<void>, RegExp][] = [
    ["broken", (web) => Deno.symlink("nowhere", `${web}/data/gone`), /holds "\.\/data\/gone", a broken symbolic link/],
    ["loop", (web) => Deno.symlink("..", `${web}/data/sub/up`), /a symbolic link to a folder that contains it/],
    ["pipe", (web) => mkfifo(`${web}/data/pipe`), /holds "\.\/data\/pipe", which is not a regular file or folder/],
  ];
  for (const [_, make, expected] of cases) {
    const { root, web } = await project(mounting(`{ "/data" = "./data" }`));
    await make(web);
    assertLocated(await deployError(root), 6, expected);
  }
  const { root } = await project(mounting(`{ "/data" = "./hello.wasm" }`));
  assertLocated(await deployError(root), 6, /`wasm\.files\."\/data"` is not a folder: "\.\/hello\.wasm"/);
  const missing = await project(mounting(`{ "/data" = "./nope" }`));
  assertLocated(await deployError(missing.root), 6, /`wasm\.files\."\/data"` not found: ".*\/nope"/);
});

Deno.test("module: a folder, a missing file, a pipe or bytes that are not Wasm name file, line, service and field", async () => {
  const toml = (module: string) => `[[service]]\nname = "api"\n\nmodule = "${module}"\n`;
  const cases: [string, RegExp][] = [
    ["../", /`module` is a folder, not a module file: ".*\/services\/web\/\.\.\/"/],
    ["missing.wasm", /`module` not found: ".*missing\.wasm"/],
    ["pipe.wasm", /`module` is not a regular file/],
    ["service.toml", /`module` is not WebAssembly \(no `\\0asm` header\)/],
  ];
  for (const [module, expected] of cases) {
    const { root, web } = await project(toml(module));
    await mkfifo(`${web}/pipe.wasm`);
    const err = await deployError(root);
    assertLocated(err, 4, expected);
    assert.ok(err.hint);
  }
});

Deno.test("module: a Wasm file elsewhere, or linked from elsewhere, is read (it is code the server checks)", async () => {
  const { root, web, outside } = await project(`[[service]]\nname = "api"\nmodule = "linked.wasm"\n`);
  await Deno.writeFile(`${outside}/built.wasm`, WASM);
  await Deno.symlink(`${outside}/built.wasm`, `${web}/linked.wasm`);
  const bundle = await loadProject(root);
  assert.equal([...bundle.modules.values()][0].bytes.length, WASM.length);
});

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(success, "mkfifo failed");
}
