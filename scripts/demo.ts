/**
 * `deno task demo`: a server on a data dir inside the project (.orca-demo/),
 * unprivileged ports, the examples deployed, and the curl commands to try.
 */

import { main as orca } from "../cli.ts";
import { startServer } from "../control/mod.ts";
import { Engine } from "../runtime/mod.ts";

const root = new URL("..", import.meta.url).pathname;
const home = `${root}.orca-demo`;

async function start() {
  try {
    return await startServer({ home, apiPort: 6880, httpPort: 8080, hostname: "127.0.0.1" });
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    console.error("demo: ports 6880/8080 are taken; using free ports instead");
    return await startServer({ home, apiPort: 0, httpPort: 0, hostname: "127.0.0.1" });
  }
}

const server = await start();
console.log(`orca demo: server up (data in ${home})\n`);
const code = await orca(["deploy", `${root}examples`, "--server", server.apiUrl, `--token=${server.token}`]);
if (code !== 0) {
  await server.close();
  Deno.exit(code);
}
// Containers too, when this machine has an engine and the example images.
const engine = new Engine();
const withContainers = await engine.ping() &&
  await engine.request("GET", "/images/orca-examples%2Fredis:7/json").then(() => true, () => false) &&
  await orca(["deploy", `${root}examples/containers`, "--server", server.apiUrl, `--token=${server.token}`]) === 0;
const http = server.httpUrl;
console.log(`
Try these (the proxy is ${http}):

  curl ${http}/js/anything?x=1               # JavaScript component (componentize-js, wasi:http)
  curl ${http}/hello/world                   # route parameter -> JS guest
  curl ${http}/c/path?q=1                    # C component (WASI preview1 command, WAGI-style)
  curl ${http}/c/greet/ada                   # route parameter -> C guest
  curl -H 'Host: c.localhost' ${http}/       # routed by domain
  curl ${http}/nowhere                       # no route: 404
${
  withContainers
    ? `  curl -H 'Host: counter.localhost' ${http}/cgi-bin/hits   # a container counting visits in Redis (alias db)\n`
    : "  (containers: run sudo bash scripts/docker_engine.sh and bash examples/containers/build_images.sh first)\n"
}
  ORCA_HOME=${home} deno task orca status --server ${server.apiUrl}
  ORCA_HOME=${home} deno task orca logs hello-c --server ${server.apiUrl}

Serving until Ctrl-C.`);

await new Promise<void>((resolve) => {
  Deno.addSignalListener("SIGINT", resolve);
  Deno.addSignalListener("SIGTERM", resolve);
});
console.log("\norca demo: stopping");
await server.close();
Deno.exit(0);
