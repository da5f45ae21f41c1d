/**
 * `orca server`: one process holding the store, the control plane and its
 * API, the proxy, and the local Wasm runtime.
 */

import { OrcaError } from "../errors.ts";
import { createProxy, requestTarget } from "../proxy/mod.ts";
import { ContainerRuntime, discoverGpus, Engine, WasmRuntime } from "../runtime/mod.ts";
import { VERSION } from "../version.ts";
import { createApi } from "./api.ts";
import { loadOrCreateNodeId, loadOrCreateToken } from "./auth.ts";
import type { BodyLimits } from "./body.ts";
import { secureHome } from "./home.ts";
import { JobTriggers } from "./jobs.ts";
import { ControlPlane } from "./plane.ts";
import { ControlLog } from "./raft_log.ts";
import { Store } from "./store.ts";

export interface ServerOptions {
  /** The data dir ($ORCA_HOME). */
  home: string;
  apiPort: number;
  httpPort: number;
  /** Address both listeners bind to. */
  hostname: string;
  /** Pre-made instances per service. */
  poolSize?: number;
  /** The Docker engine's socket (default /var/run/docker.sock). */
  dockerSocket?: string;
  /** Idle time after which a Wasm service drops its instances (default 60 s). */
  idleMs?: number;
  /** Guest host processes for Wasm guests (default: one per core; 0 runs them in the server process). */
  workers?: number;
  /** Largest API request bodies (defaults in body.ts: modules 128 MiB, deploys 8 MiB, messages and events 1 MiB). */
  limits?: Partial<BodyLimits>;
  log?: (line: string) => void;
}

export interface RunningServer {
  apiUrl: string;
  httpUrl: string;
  token: string;
  plane: ControlPlane;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => console.error(`orca: ${line}`));
  const warning = await secureHome(opts.home);
  if (warning) log(warning);
  const token = await loadOrCreateToken(opts.home);
  // EX_IOERR: a store that failed a write cannot be trusted with the next one.
  const fatal = (what: string) => (err: unknown): never => {
    log(
      `fatal: ${what} failed to write (${
        (err as Error).message
      }); exiting so nothing is acknowledged that is not stored`,
    );
    Deno.exit(74);
  };
  const store = new Store(`${opts.home}/orca.db`, { onFatal: fatal("the store") });
  // The runtime exists before the plane that publishes its incidents: bind late.
  let incident = (_service: string, _error: string) => {};
  const wasm = new WasmRuntime({
    cacheDir: `${opts.home}/cache`,
    loadModule: (hash) => Promise.resolve(store.getModule(hash)),
    loadBlob: (hash) => Promise.resolve(store.getBlob(hash)),
    poolSize: opts.poolSize ?? 4,
    ...(opts.idleMs !== undefined && { idleMs: opts.idleMs }),
    ...(opts.workers !== undefined && { workers: opts.workers }),
    log,
    onIncident: (service, error) => incident(service, error),
  });
  const nodeId = await loadOrCreateNodeId(opts.home);
  let commands: ControlLog;
  try {
    commands = await ControlLog.open({ home: opts.home, id: nodeId, store, onFatal: fatal("the Raft log") });
  } catch (err) {
    wasm.close();
    store.close();
    throw err;
  }
  const containers = new ContainerRuntime(new Engine(opts.dockerSocket), nodeId);
  const jobs = new JobTriggers({ store, runtimes: { wasm, container: containers }, log });
  const plane = new ControlPlane({ store, commands, wasm, containers, log, jobs });
  incident = (service, error) => plane.emit("orca.instance.crashed", { service, error });
  await plane.restore();

  const gpus = await discoverGpus();
  const node = async () => ({
    id: nodeId,
    version: VERSION,
    runtimes: { wasm: true, container: await containers.engine.ping() },
    wasmHosts: wasm.hosts(),
    gpus,
    member: (() => {
      const m = commands.status();
      const role = m.learners.includes(m.id) ? "learner" as const : "voter" as const;
      return { role, leader: m.leader === m.id, term: m.term, commit: m.commit, applied: m.applied };
    })(),
  });
  const api = createApi({
    node,
    images: containers,
    plane,
    store,
    jobs,
    token,
    version: VERSION,
    ...(opts.limits && { limits: opts.limits }),
    onError: (err) => log(`api error: ${(err as Error).stack ?? err}`),
  });
  const proxy = createProxy({
    routes: () => plane.routes,
    serve: (service, request, ctx) => plane.serve(service, request, ctx),
    onError: (err, request) => log(`proxy: ${request.method} ${request.url}: ${(err as Error).message ?? err}`),
  });

  const onListen = () => {};
  // The API's router reads the path from the URL, which the server builds from Host: check Host first, as the proxy does.
  const apiFetch = (request: Request) => {
    const target = requestTarget(request);
    return "error" in target ? new OrcaError("invalid", target.error).toResponse() : api.fetch(request);
  };
  const apiServer = Deno.serve({ hostname: opts.hostname, port: opts.apiPort, onListen }, apiFetch);
  let httpServer: Deno.HttpServer<Deno.NetAddr>;
  try {
    httpServer = Deno.serve({ hostname: opts.hostname, port: opts.httpPort, onListen }, proxy);
  } catch (err) {
    await apiServer.shutdown();
    throw err;
  }
  const url = (addr: Deno.NetAddr) =>
    `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`;
  return {
    apiUrl: url(apiServer.addr),
    httpUrl: url(httpServer.addr),
    token,
    plane,
    async close() {
      await httpServer.shutdown();
      await apiServer.shutdown();
      await plane.shutdown();
      await commands.close();
      wasm.close();
      store.close();
    },
  };
}
