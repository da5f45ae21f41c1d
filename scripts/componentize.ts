/** Child process of build_examples.ts: componentize one JS guest. Args: SOURCE WIT_DIR OUT [WORLD (default edge)]. */

import { componentize } from "@bytecodealliance/componentize-js";
// @ts-types="../node_modules/@bytecodealliance/preview2-shim/dist/nodejs/filesystem.d.ts"
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";

const [sourcePath, witPath, out, worldName = "edge"] = Deno.args;
// componentize-js reads the WIT through WASI: let it see the files it is given.
_setPreopens({ "/": "/" });
const { component } = await componentize({ sourcePath, witPath, worldName });
await Deno.writeFile(out, component);
