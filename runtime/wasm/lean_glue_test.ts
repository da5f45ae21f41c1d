import assert from "node:assert/strict";
import { sha256Hex } from "../../config/mod.ts";
import { prepareComponent } from "./compile.ts";
import { leanGlue } from "./lean_glue.ts";
import { guests } from "./test_util.ts";

const helpers = [
  "function createNewCurrentTask(args) { return [new AsyncTask(args), 1n]; }",
  "function getCurrentTask(componentIdx, taskID) {}",
  "  function _getGlobalCurrentTaskMeta(componentIdx) {}",
  "    function _withGlobalCurrentTaskMeta(args) {}",
  "    async function _withGlobalCurrentTaskMetaAsync(args) {}",
  "function _trackHostOperation(operation) {}",
  "function _lowerImportBackwardsCompat(args) {}",
  "function _suspendingImport(componentIdx, fn, syncOnly = false) {}",
  "function _checkMayLeave(componentIdx) { left.push(componentIdx); }",
];
const glue = (body: string[]) => `export function instantiate(getCoreModule, imports) {\n${body.join("\n")}\n}\n`;

Deno.test("leanGlue renames jco's task runtime and declares the lean one first; its calls go straight through", async () => {
  const out = leanGlue(glue([
    ...helpers,
    "const left = [];",
    "return { left, lower: _lowerImportBackwardsCompat, suspending: _suspendingImport, task: createNewCurrentTask({ isAsync: false })[0] };",
  ]));
  assert.equal(out.split("\n")[0], "export function instantiate(getCoreModule, imports) {");
  assert.ok(out.indexOf("class OrcaLeanTask") < out.indexOf("createNewCurrentTask_jco("));
  for (const name of ["createNewCurrentTask", "_withGlobalCurrentTaskMetaAsync", "_suspendingImport"]) {
    assert.equal(out.split(`function ${name}(`).length, 2, `${name}: only the lean declaration keeps the name`);
    assert.ok(out.includes(`function ${name}_jco(`), `${name}: jco's is renamed`);
  }
  type Task = { setErrored(e: unknown): void; reject(e: unknown): void; completionPromise(): Promise<unknown> };
  type Lean = {
    left: number[];
    lower: (args: unknown, ...params: number[]) => unknown;
    suspending: (idx: number, fn: (...a: number[]) => unknown) => (...a: number[]) => unknown;
    task: Task;
  };
  const lean = (new Function(`${out.replace(/^export /m, "")}\nreturn instantiate;`)() as () => Lean)();
  // An import: the may-leave check with its component, then the trampoline with the guest's arguments, its result back.
  const importFn = (a: number, b: number) => a * 10 + b;
  assert.equal(lean.lower({ componentIdx: 3, importFn }, 4, 2), 42);
  assert.equal(lean.suspending(5, importFn)(1, 2), 12);
  assert.deepEqual(lean.left, [3, 5]);
  // A task that failed hands its first error back: that is how a host error reaches the guest as a trap.
  lean.task.setErrored(new Error("first"));
  lean.task.reject(new Error("second"));
  await assert.rejects(lean.task.completionPromise(), /first/);
});

Deno.test("leanGlue leaves alone a glue with component-model async, or one of another shape", () => {
  const asyncGlue = glue([...helpers, "createNewCurrentTask({ isAsync: true });"]);
  assert.equal(leanGlue(asyncGlue), asyncGlue);
  const streams = glue([...helpers, "const l = _lowerFlatStream(meta);"]);
  assert.equal(leanGlue(streams), streams);
  const missing = glue(helpers.filter((h) => !h.includes("_trackHostOperation")));
  assert.equal(leanGlue(missing), missing, "a helper missing");
  const twice = glue([...helpers, "function getCurrentTask() {}"]);
  assert.equal(leanGlue(twice), twice, "a helper declared twice");
  const noCheck = glue(helpers.filter((h) => !h.includes("_checkMayLeave")));
  assert.equal(leanGlue(noCheck), noCheck, "no may-leave check to call");
  const notGlue = "export const x = 1;\n";
  assert.equal(leanGlue(notGlue), notGlue);
});

Deno.test("every kind of test guest gets the lean glue from jco's real output", async () => {
  const cache = await Deno.makeTempDir({ prefix: "orca-lean-glue-test-" });
  try {
    for (const name of ["wat", "reuse", "js", "c", "leak"]) {
      const bytes = await Deno.readFile(guests[name]);
      const prepared = await prepareComponent(bytes, await sha256Hex(bytes), cache);
      const js = await Deno.readTextFile(prepared.gluePath);
      assert.ok(js.includes("class OrcaLeanTask"), `${name}: lean`);
      assert.ok(js.includes("function createNewCurrentTask_jco("), `${name}: jco's runtime kept, renamed`);
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
