import { readService, sha256Hex } from "../../config/mod.ts";
import { runtimeContract } from "../contract.ts";
import { WasmRuntime } from "./runtime.ts";

for (const [mode, workers] of [["in guest host processes", 2], ["in this process", 0]] as const) {
  Deno.test(`the Wasm runtime keeps the Runtime contract, guests ${mode}`, async (t) => {
    const bytes = await Deno.readFile(new URL("../../examples/services/hello-c/hello.wasm", import.meta.url));
    const hash = await sha256Hex(bytes);
    const cacheDir = await Deno.makeTempDir({ prefix: "orca-contract-" });
    const runtime = new WasmRuntime({ cacheDir, loadModule: () => Promise.resolve(bytes), poolSize: 2, workers });
    const service = readService(
      { name: "hello", module: "hello.wasm", module_hash: hash },
      { file: "test" },
      "contract",
      [],
      { api: true },
    );
    try {
      await runtimeContract(t, {
        runtime,
        spec: { id: "contract/hello@1", service },
        body: /hello from a C edge function/,
        exec: { cmd: [], stdout: /hello from a C edge function/ },
      });
    } finally {
      runtime.close();
      await Deno.remove(cacheDir, { recursive: true });
    }
  });
}
