// workerd side of the benchmark: serves the same jco-transpiled component
// Orca serves, with preview2-shim's browser flavour, a fresh instance per
// request (as Orca does). ORCA_KIND is "http" (wasi:http handler) or "wagi".
import * as cli from "./shim/cli.js";
import * as io from "./shim/io.js";
import * as clocks from "./shim/clocks.js";
import * as random from "./shim/random.js";
import * as filesystem from "./shim/filesystem.js";
import * as sockets from "./shim/sockets.js";
import * as http from "./shim/http.js";
import { instantiate } from "./component.js";
import { cores, kind } from "./cores.js";

function imports(env, stdin, out) {
  let offset = 0;
  const c = cli.createCli({
    environment: env,
    arguments: ["guest"],
    stdin: {
      blockingRead(len) {
        if (offset >= stdin.length) throw { tag: "closed" };
        const chunk = stdin.subarray(offset, offset + Number(len));
        offset += chunk.length;
        return chunk;
      },
      subscribe: () => io.pollableCreate(),
    },
    stdout: { write: (b) => out.push(b.slice()), blockingFlush() {}, flush() {} },
    stderr: { write() {}, blockingFlush() {}, flush() {} },
  });
  const base = {
    "wasi:cli/environment": c.environment,
    "wasi:cli/exit": c.exit,
    "wasi:cli/stdin": c.stdin,
    "wasi:cli/stdout": c.stdout,
    "wasi:cli/stderr": c.stderr,
    "wasi:cli/terminal-input": c.terminalInput,
    "wasi:cli/terminal-output": c.terminalOutput,
    "wasi:cli/terminal-stdin": c.terminalStdin,
    "wasi:cli/terminal-stdout": c.terminalStdout,
    "wasi:cli/terminal-stderr": c.terminalStderr,
    "wasi:filesystem/preopens": { getDirectories: () => [] },
    "wasi:filesystem/types": filesystem.types,
    "wasi:io/error": io.error,
    "wasi:io/poll": io.poll,
    "wasi:io/streams": io.streams,
    "wasi:random/random": random.random,
    "wasi:random/insecure": random.insecure,
    "wasi:random/insecure-seed": random.insecureSeed,
    "wasi:clocks/monotonic-clock": clocks.monotonicClock,
    "wasi:clocks/wall-clock": clocks.wallClock,
    "wasi:http/types": http.types,
    "wasi:http/outgoing-handler": {
      handle() {
        throw { tag: "HTTP-request-denied" };
      },
    },
    "wasi:sockets/instance-network": sockets.instanceNetwork,
    "wasi:sockets/ip-name-lookup": sockets.ipNameLookup,
    "wasi:sockets/network": sockets.network,
    "wasi:sockets/tcp": sockets.tcp,
    "wasi:sockets/tcp-create-socket": sockets.tcpCreateSocket,
    "wasi:sockets/udp": sockets.udp,
    "wasi:sockets/udp-create-socket": sockets.udpCreateSocket,
  };
  const all = {};
  for (const [k, v] of Object.entries(base)) {
    all[k] = v;
    for (let minor = 0; minor <= 12; minor++) all[`${k}@0.2.${minor}`] = v;
  }
  return all;
}

const getCore = (name) => cores[name];

function pick(exports, prefix, short) {
  const key = Object.keys(exports).find((k) => k.startsWith(prefix)) ?? short;
  return exports[key];
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (kind === "http") {
      const instance = await instantiate(getCore, imports({}, new Uint8Array(), []));
      return await http.handleIncomingRequest(
        request,
        pick(instance, "wasi:http/incoming-handler", "incomingHandler").handle,
      );
    }
    const out = [];
    const env = {
      REQUEST_METHOD: request.method,
      PATH_INFO: url.pathname,
      QUERY_STRING: url.search.slice(1),
      SERVER_PROTOCOL: "HTTP/1.1",
    };
    const instance = await instantiate(getCore, imports(env, new Uint8Array(await request.arrayBuffer()), out));
    try {
      await pick(instance, "wasi:cli/run", "run").run();
    } catch (err) {
      if (!err?.exitError || err.code !== 0) return new Response("guest failed", { status: 500 });
    }
    const text = new TextDecoder().decode(new Uint8Array(out.flatMap((b) => [...b])));
    const split = text.search(/\r?\n\r?\n/);
    const head = text.slice(0, split);
    const body = text.slice(split).replace(/^\r?\n\r?\n/, "");
    const headers = new Headers();
    for (const line of head.split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i > 0) headers.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    return new Response(body, { headers });
  },
};
