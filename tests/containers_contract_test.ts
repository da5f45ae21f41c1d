/** The container runtime keeps the same Runtime contract as Wasm, on a real engine (skipped without one). */

import { readService } from "../config/mod.ts";
import { runtimeContract } from "../runtime/contract.ts";
import { ContainerRuntime, Engine } from "../runtime/mod.ts";

const engine = new Engine();
const ready = await engine.ping() &&
  await engine.request("GET", "/images/orca-examples%2Fbusybox:1/json").then(() => true, () => false);
if (!ready) {
  console.error(
    "containers_contract_test: SKIPPED: no Docker engine or images (scripts/docker_engine.sh, examples/containers/build_images.sh)",
  );
}

Deno.test({
  name: "the container runtime keeps the Runtime contract",
  ignore: !ready,
  async fn(t) {
    const project = `c${crypto.randomUUID().slice(0, 6)}`;
    const service = readService(
      {
        name: "web",
        image: "orca-examples/busybox:1",
        command: ["/bin/sh", "-c", "echo starting web; exec /bin/httpd -f -p 8080 -h /www"],
        port: 8080,
      },
      { file: "test" },
      project,
    );
    await runtimeContract(t, {
      runtime: new ContainerRuntime(engine, `contract-${project}`),
      spec: { id: `${project}/web@1`, service },
      body: /hello from a container/,
      exec: { cmd: ["/bin/echo", "hi from exec"], stdout: /hi from exec/ },
    });
  },
});
