/**
 * `orca join`: a worker node. It runs replicas and takes no part in Raft:
 * it keeps one WebSocket to the control plane (control/agent_hub.ts), to any
 * server, following the leader, and runs what the state it is sent places on
 * it, with the same control plane code as a server (the state installed as a
 * snapshot, each time it changes). Its proxy serves every route (forwarding
 * what runs elsewhere), and its own small API, with the cluster token,
 * answers the leader (prepare a deploy) and the servers (logs, stats, exec
 * of its replicas). Its workloads keep running while it is cut off; it
 * reconnects with backoff (5, 10, 20, 40, then every 60 s, with jitter) and
 * converges to the state it is sent then.
 */

import { OrcaError } from "../errors.ts";
import { requestTarget } from "../proxy/mod.ts";
import { ContainerRuntime, discoverGpus, Engine } from "../runtime/mod.ts";
import { VERSION } from "../version.ts";
import { createAgentApi } from "./agent_api.ts";
import { NodeListeners } from "./listeners.ts";
import { startMetrics } from "./metrics_server.ts";
import { AGENT_PATH } from "./agent_hub.ts";
import { bearerMatches, loadOrCreateNodeId, loadOrCreateToken } from "./auth.ts";
import { forwardCredential, Forwarder } from "./forward.ts";
import { secureHome } from "./home.ts";
import { ControlMachine } from "./machine.ts";
import { fetchFromPeers } from "./missing.ts";
import { localFacts, offeredRuntimes } from "./node_facts.ts";
import { ControlPlane } from "./plane.ts";
import { Store } from "./store.ts";
import { nodeWasmRuntime } from "./workloads.ts";
import { NodeCertificates } from "./certificates.ts";
import { nodeProxies } from "./node_proxy.ts";
import { SecretBox } from "./secret_box.ts";
import type { ServiceSpec } from "../config/mod.ts";
import { openSecrets } from "./secrets.ts";

export interface AgentOptions {
  home: string;
  /** A server of the cluster (`host:port` of its API). */
  join: string;
  token?: string;
  /** Its name in `placement.node` and `orca nodes` (default: the host name). */
  name?: string;
  labels?: Record<string, string>;
  hostname: string;
  apiPort: number;
  httpPort: number;
  /** Its HTTPS port for the services' domains (certificates come from the servers' state); none: HTTP only. */
  /** Where metrics are served without a token (`--metrics-listen`). */
  metricsListen?: { hostname: string; port: number };
  httpsPort?: number;
  /** Where servers reach its API (`host:port`; default: the listen address and API port). */
  advertise?: string;
  workers?: number;
  poolSize?: number;
  dockerSocket?: string;
  /** How often the watchdog checks every replica here (default 30). */
  watchdogSecs?: number;
  log?: (line: string) => void;
  /** Reconnect delays in ms (default 5, 10, 20, 40, 60 s), each with up to 20% jitter. */
  backoffMs?: number[];
}

export interface RunningAgent {
  id: string;
  apiUrl: string;
  httpUrl: string;
  httpsUrl?: string;
  metricsUrl?: string;
  close(): Promise<void>;
}

const BACKOFF_MS = [5_000, 10_000, 20_000, 40_000, 60_000];

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = opts.log ?? ((line: string) => console.error(`orca: ${line}`));
  const warning = await secureHome(opts.home);
  if (warning) log(warning);
  // A worker never makes a token: it takes the cluster's, given or kept from an earlier start.
  const kept = await Deno.readTextFile(`${opts.home}/cluster.token`).catch(() => undefined);
  if (opts.token === undefined && kept === undefined) {
    throw new OrcaError("usage", `orca join needs the cluster's token: --token T, or ${opts.home}/cluster.token`, {
      hint: "the token is in $ORCA_HOME/cluster.token on a server of the cluster",
    });
  }
  const token = await loadOrCreateToken(opts.home, opts.token);
  const id = await loadOrCreateNodeId(opts.home);
  const store = new Store(`${opts.home}/orca.db`, {
    onFatal: (err) => {
      log(`fatal: the store failed to write (${(err as Error).message}); exiting`);
      Deno.exit(74);
    },
  });
  const machine = new ControlMachine(store);
  const wasm = nodeWasmRuntime(opts.home, store, {
    poolSize: opts.poolSize ?? 4,
    ...(opts.workers !== undefined && { workers: opts.workers }),
    log,
  });
  const containers = new ContainerRuntime(new Engine(opts.dockerSocket), id);
  let api = (_r: Request, _u: URL): Response | Promise<Response> =>
    new OrcaError("unavailable", "the worker is starting", { retryAfter: 1 }).toResponse();
  const listeners = new NodeListeners({ ...opts, what: "worker", log }, (request) => {
    const target = requestTarget(request);
    if ("error" in target) return new OrcaError("invalid", target.error).toResponse();
    if (!bearerMatches(request, token)) {
      return new OrcaError("unauthorized", "missing or wrong token", { hint: "send the cluster token" }).toResponse();
    }
    return api(request, target.url);
  });
  const { api: apiServer, http: httpServer, https: httpsServer } = listeners;
  const host = opts.hostname === "0.0.0.0" ? Deno.hostname() : opts.hostname;
  const advertise = opts.advertise ?? `${host}:${apiServer.addr.port}`;
  const runtimes = await offeredRuntimes(containers.engine);
  const gpus = await discoverGpus();
  const facts = {
    ...localFacts(opts.labels ?? {}, gpus, runtimes, `${host}:${httpServer.addr.port}`),
    worker: true,
    ...(opts.name !== undefined && { name: opts.name }),
  };

  // The servers to ask: the one joined, then those the state names (the leader first when known).
  const servers = () => {
    const known = machine.members().filter((m) => !m.facts?.worker).map((m) => ({ id: m.id, address: m.address }));
    return [{ id: "joined", address: opts.join }, ...known.filter((m) => m.address !== opts.join)];
  };
  let box: Promise<SecretBox | undefined> = Promise.resolve(undefined);
  const openHere = async (spec: ServiceSpec) => openSecrets(store, await box, spec);
  const link = new Link({
    id,
    token,
    hello: () => ({ type: "hello", id, address: advertise, facts, node: { version: VERSION, runtimes } }),
    servers: () => servers().map((s) => s.address),
    onView: (view) => machine.restore(new TextEncoder().encode(JSON.stringify(view))),
    // Kept in $ORCA_HOME/secrets.key; a start that needs it waits for it to be stored.
    onSecretsKey: (key) => {
      box = SecretBox.adopt(opts.home, key).catch((err) => {
        log(`the cluster's secrets key could not be kept: ${(err as Error).message}`);
        return undefined;
      });
    },
    log,
    backoffMs: opts.backoffMs ?? BACKOFF_MS,
  });
  const forwarder = new Forwarder({
    credential: await forwardCredential(token),
    proxyOf: (node) => machine.members().find((m) => m.id === node)?.facts?.proxy,
  });
  const plane = new ControlPlane({
    store,
    // A worker proposes nothing: the state it runs comes from the leader, whole, each time it changes.
    commands: {
      propose: () => Promise.reject(new OrcaError("unsupported", "a worker node takes no writes")),
      caughtUp: () => Promise.resolve(),
      onApplied: (listener) => machine.onApplied(listener),
    },
    wasm,
    containers,
    log,
    secrets: { resolve: openHere },
    fetchMissing: (kind, hash) => fetchFromPeers(servers(), token, store, kind, hash),
    keepsAll: false,
    leads: () => false,
    ...(opts.watchdogSecs !== undefined && { watchdogMs: opts.watchdogSecs * 1000 }),
    cluster: {
      node: id,
      members: () => machine.members(),
      forwarder,
      report: (r) => link.send({ type: "states", ...r }),
    },
  });
  await plane.restore();
  const metrics = startMetrics({ plane, wasmHosts: () => wasm.hosts(), proxyPorts: () => listeners.proxyPorts() });
  listeners.nodeMetrics = metrics;
  api = createAgentApi({
    plane,
    metrics,
    self: async () => ({
      id,
      version: VERSION,
      role: "worker",
      runtimes: { wasm: true, container: await containers.engine.ping() },
      wasmHosts: wasm.hosts(),
      gpus,
      term: 0,
      commit: machine.applied(),
      applied: machine.applied(),
    }),
  });
  const p = plane;
  // Certificates and challenge answers come with the state the leader sends.
  const certs = new NodeCertificates(store, (l) => machine.onApplied(l), httpsServer?.addr.port, openHere);
  certs.onChange = () => httpsServer?.reload();
  listeners.bind({ ...nodeProxies(p, forwarder, certs, log), lookup: (name) => certs.lookup(name) });
  const reports = setInterval(() => p.reportReplicas(), 1000);
  link.start();
  const urls = listeners.urls();
  return {
    id,
    apiUrl: urls.api,
    httpUrl: urls.http,
    ...(urls.https && { httpsUrl: urls.https }),
    ...(urls.metrics && { metricsUrl: urls.metrics }),
    async close() {
      clearInterval(reports);
      link.stop();
      await listeners.shutdown();
      await p.shutdown();
      wasm.close();
      store.close();
    },
  };
}

interface LinkOptions {
  id: string;
  token: string;
  hello(): Record<string, unknown>;
  servers(): string[];
  onView(view: unknown): void;
  /** The cluster's secrets key (base64), sent before the first view. */
  onSecretsKey(key: string): void;
  log(line: string): void;
  backoffMs: number[];
}

/** The worker's one connection to the control plane: to the leader, found through any server; reconnects with backoff. */
class Link {
  readonly #opts: LinkOptions;
  #socket?: WebSocket;
  #stopped = false;
  #failures = 0;
  /** Servers tried since the last one that took this worker: a round of them is tried before backing off. */
  #tried = 0;
  #next?: string;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #ping?: ReturnType<typeof setInterval>;

  constructor(opts: LinkOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#ping);
    this.#socket?.close(1000, "worker stopping");
  }

  /** Sends `message` to the leader; rejects while cut off (the plane reports again later). */
  send(message: Record<string, unknown>): Promise<void> {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    socket.send(JSON.stringify(message));
    return Promise.resolve();
  }

  #connect(): void {
    if (this.#stopped) return;
    const servers = this.#opts.servers();
    const address = this.#next ?? servers[this.#tried % servers.length];
    this.#next = undefined;
    this.#tried++;
    const socket = new WebSocket(`ws://${address}${AGENT_PATH}`, {
      headers: { authorization: `Bearer ${this.#opts.token}` },
    });
    this.#socket = socket;
    let welcomed = false;
    socket.onopen = () => {
      socket.send(JSON.stringify(this.#opts.hello()));
      clearInterval(this.#ping);
      this.#ping = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}');
      }, 1000);
    };
    socket.onmessage = (e) => {
      let message: { type?: string; view?: unknown; leader?: string; message?: string; key?: unknown };
      try {
        message = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (message.type === "view") {
        if (!welcomed) this.#opts.log(`connected to the control plane at ${address}`);
        welcomed = true;
        this.#failures = 0;
        this.#tried = 0;
        try {
          this.#opts.onView(message.view);
          // The leader waits on this before it tells an ACME CA that every node answers a challenge.
          const index = (message.view as { applied?: { index?: unknown } })?.applied?.index;
          if (typeof index === "number") socket.send(JSON.stringify({ type: "applied", index }));
        } catch (err) {
          this.#opts.log(`the state sent could not be installed: ${(err as Error).message}`);
        }
      } else if (message.type === "secrets-key" && typeof message.key === "string") {
        this.#opts.onSecretsKey(message.key);
      } else if (message.type === "redirect" && message.leader) {
        this.#next = message.leader;
      } else if (message.type === "error") {
        this.#opts.log(`the control plane refused this worker: ${message.message}`);
      }
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      clearInterval(this.#ping);
      if (this.#stopped) return;
      // Sent to the leader, or other servers not tried yet (a leader that died): at once, near enough. Every one
      // tried: wait, longer each time, with jitter.
      const round = this.#tried >= this.#opts.servers().length;
      const delay = this.#next ? 0 : round ? this.#delay() : 200;
      if (!this.#next && round) {
        this.#failures++;
        this.#tried = 0;
      }
      if (welcomed) this.#opts.log(`lost the control plane at ${address}; workloads keep running`);
      this.#timers = [setTimeout(() => this.#connect(), delay)];
    };
  }

  #delay(): number {
    const steps = this.#opts.backoffMs;
    const base = steps[Math.min(this.#failures, steps.length - 1)];
    return Math.round(base * (1 + Math.random() * 0.2));
  }
}
