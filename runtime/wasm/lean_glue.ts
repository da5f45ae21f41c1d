/**
 * A lean call path for jco's glue. jco 0.15 routes every call across the
 * component boundary (the export, and each import the guest calls) through
 * the component-model-async task runtime: an AsyncTask with its promises, a
 * subtask, task lists scanned by id, a global "current task". For a WASI 0.2
 * component none of that carries meaning: no function is async-lifted or
 * async-lowered, JSPI suspends the guest's blocking imports, and Orca never
 * enters an instance while it runs (one call per instance at a time). The
 * generated trampolines lift and lower every value themselves, so the task
 * runtime only costs: ~10 tasks per wasi:http request, most of a WAT handler's
 * time.
 *
 * `leanGlue` renames the task runtime's entry points and declares small ones
 * in their place (`LEAN_RUNTIME`). What stays: the may-leave check on every
 * import, an instance that trapped refusing further calls, and host errors
 * reaching the guest as its results or as traps, exactly as before. A glue
 * with anything async (an async function or a P3 stream) is left untouched.
 */

/** The helpers replaced, each declared once in jco's glue as `function NAME(` (or `async function NAME(`). */
const REPLACED = [
  "createNewCurrentTask",
  "getCurrentTask",
  "_getGlobalCurrentTaskMeta",
  "_withGlobalCurrentTaskMeta",
  "_withGlobalCurrentTaskMetaAsync",
  "_trackHostOperation",
  "_lowerImportBackwardsCompat",
  "_suspendingImport",
] as const;

/**
 * The replacements, declared at the top of `instantiate` (so they precede
 * every use). A task is a plain object that remembers an error: its export's
 * or import's wrapper hands that back through `completionPromise()`.
 */
const LEAN_RUNTIME = `
// Orca (runtime/wasm/lean_glue.ts): WASI 0.2 calls without the component-model-async task runtime.
class OrcaLeanTask {
  #error = undefined;
  #failed = false;
  #exited = false;
  id() { return 0n; }
  componentIdx() { return 0; }
  enter() { return true; }
  enterSync() { return true; }
  mayBlock() { return true; }
  setCalleeIsAsync() {}
  setParentSubtask() {}
  getParentSubtask() { return undefined; }
  currentSubtask() { return undefined; }
  setReturnMemoryIdx() {}
  setReturnMemory() {}
  resolve() {}
  setErrored(err) { this.#error = err; this.#failed = true; }
  reject(err) { if (!this.#failed) this.setErrored(err); }
  exit() { this.#exited = true; }
  isExited() { return this.#exited; }
  isResolvedState() { return this.#exited; }
  completionPromise() { return this.#failed ? Promise.reject(this.#error) : Promise.resolve(undefined); }
}
function createNewCurrentTask() { return [new OrcaLeanTask(), 0n]; }
function getCurrentTask() { return undefined; }
function _getGlobalCurrentTaskMeta() { return undefined; }
function _withGlobalCurrentTaskMeta(args) { return args.fn(); }
function _withGlobalCurrentTaskMetaAsync(args) { return args.fn(); }
function _trackHostOperation(operation) { return operation(); }
function _lowerImportBackwardsCompat(args, ...params) {
  _checkMayLeave(args.componentIdx);
  return args.importFn(...params);
}
function _suspendingImport(componentIdx, fn) {
  return function (...args) {
    _checkMayLeave(componentIdx);
    return fn.apply(null, args);
  };
}
`;

/** Whether the glue has anything of the component model's async (then the task runtime is what runs it). */
function usesAsync(js: string): boolean {
  return /\b(isAsync|funcTypeIsAsync): true\b/.test(js) || /\b_lowerFlat(Stream|Future)\b|\bFutureValue\(/.test(js);
}

/**
 * `js` with the lean call path, or `js` itself when it uses component-model
 * async or does not have the shape this was written against (another jco).
 */
export function leanGlue(js: string): string {
  if (usesAsync(js)) return js;
  const head = /^(export )?function instantiate\(.*\{$/m;
  // The lean imports still make the may-leave check, with jco's own function.
  if (!head.test(js) || js.match(/^\s*function _checkMayLeave\(/gm)?.length !== 1) return js;
  let out = js;
  for (const name of REPLACED) {
    const decl = new RegExp(`^(\\s*(?:async )?function )${name}\\(`, "gm");
    const found = out.match(decl)?.length ?? 0;
    if (found !== 1) return js;
    out = out.replace(decl, `$1${name}_jco(`);
  }
  return out.replace(head, (line) => `${line}\n${LEAN_RUNTIME}`);
}
