/**
 * `orca server`: one process holding the store, the control plane and its
 * API, the proxy, and the local Wasm runtime.
 */

import { OrcaError } from "../errors.ts";
import { requestTarget } from "../proxy/mod.ts";
import { ContainerRuntime, discoverGpus, Engine, type JobInput, type JobResult, toBase64 } from "../runtime/mod.ts";
import { VERSION } from "../version.ts";
import { createApi } from "./api.ts";
import { bearerMatches, loadOrCreateNodeId, loadOrCreateToken } from "./auth.ts";
import type { BodyLimits } from "./body.ts";
import { secureHome } from "./home.ts";
import { SecretBox } from "./secret_box.ts";
import { startMetrics } from "./metrics_server.ts";
import { NodeListeners } from "./listeners.ts";
import { uiResponse } from "./ui.ts";
import { Secrets } from "./secrets.ts";
import { JobTriggers } from "./jobs.ts";
import { ControlPlane } from "./plane.ts";
import { Cluster } from "./cluster.ts";
import { forwardCredential, Forwarder } from "./forward.ts";
import { fetchFromPeers } from "./missing.ts";
import { NodeWatch } from "./node_watch.ts";
import { AGENT_PATH, AgentHub } from "./agent_hub.ts";
import { dumpView } from "./snapshot.ts";
import type { ReplicaReport } from "./placement_store.ts";
import { type LocalService, nodeWasmRuntime } from "./workloads.ts";
import { postToNode, promoteWhenCaughtUp, registerSelf, requestJoin } from "./join.ts";
import { localFacts, offeredRuntimes } from "./node_facts.ts";
import { ControlLog, PEER_PATH } from "./raft_log.ts";
import { Store } from "./store.ts";
import { CertIssuer, NodeCertificates } from "./certificates.ts";
import { nodeProxies } from "./node_proxy.ts";
import { type AcmeOptions, LETS_ENCRYPT } from "../proxy/acme.ts";

export interface ServerOptions {
  /** The data dir ($ORCA_HOME). */
  home: string;
  apiPort: number;
  httpPort: number;
  /** The HTTPS port for the services' domains (none: HTTP only, and no certificates are requested). */
  httpsPort?: number;
  /** The ACME CA that certificates come from (directory default: Let's Encrypt), when HTTPS is served. */
  acme?: Partial<AcmeOptions>;
  /** How often the leader looks for certificates due (default 60 s). */
  certCheckSecs?: number;
  /** Address the listeners bind to. */
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
  /** Run no replicas here (the control plane only; workers and other servers run them). */
  noWorkloads?: boolean;
  /** A node not heard from this long is unhealthy: its replicas are placed elsewhere (default 30). */
  nodeTimeoutSecs?: number;
  /** How often the watchdog checks every replica here: restarts, routes, orphans (default 30). */
  watchdogSecs?: number;
  /** Join the cluster of the server whose API is at this address (`host:port`) instead of starting one. */
  join?: string;
  /** The cluster token (a joining server needs its cluster's; it is kept in the data dir). */
  token?: string;
  /** Where peers and clients reach this server's API (`host:port`); default: the listen address and API port. */
  advertise?: string;
  /** Where metrics are served without a token (`--metrics-listen ADDR:PORT`); they are always at /api/v1/metrics. */
  metricsListen?: { hostname: string; port: number };
  /** This server's labels, for the scheduler (`--labels zone=eu-1,role=gpu`). */
  labels?: Record<string, string>;
  log?: (line: string) => void;
}

/** How long the leader waits for a job it had another node run (the node holds it to its own deadline). */
const JOB_TIMEOUT_MS = 15 * 60_000;

/** The host peers dial when none is given: the listen address, or this machine's name for a wildcard. */
function advertisedHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "::") return Deno.hostname();
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

export interface RunningServer {
  apiUrl: string;
  httpUrl: string;
  /** The HTTPS listener's address, when it serves HTTPS. */
  httpsUrl?: string;
  /** The unauthenticated metrics listener's URL (`--metrics-listen`). */
  metricsUrl?: string;
  token: string;
  plane: ControlPlane;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => console.error(`orca: ${line}`));
  const warning = await secureHome(opts.home);
  if (warning) log(warning);
  const token = await loadOrCreateToken(opts.home, opts.token);
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
  const wasm = nodeWasmRuntime(opts.home, store, {
    poolSize: opts.poolSize ?? 4,
    ...(opts.idleMs !== undefined && { idleMs: opts.idleMs }),
    ...(opts.workers !== undefined && { workers: opts.workers }),
    log,
    onIncident: (service, error) => incident(service, error),
  });
  const nodeId = await loadOrCreateNodeId(opts.home);
  const containers = new ContainerRuntime(new Engine(opts.dockerSocket), nodeId);
  const gpus = await discoverGpus();
  const node = async () => ({
    id: nodeId,
    version: VERSION,
    runtimes: { wasm: true, container: await containers.engine.ping() },
    wasmHosts: wasm.hosts(),
    gpus,
  });

  // The API listens first: a joining server's peers reach its end of the log on the API port while it catches up.
  let serveApi = (_request: Request, _url: URL): Response | Promise<Response> =>
    new OrcaError("unavailable", "the server is starting", { retryAfter: 1 }).toResponse();
  let commands: ControlLog | undefined;
  let box: SecretBox | undefined;
  let hub: AgentHub | undefined = undefined; // set once the log is open
  const apiFetch = (request: Request) => {
    // The API's router reads the path from the URL, which the server builds from Host: check Host first.
    const target = requestTarget(request);
    if ("error" in target) return new OrcaError("invalid", target.error).toResponse();
    if (target.url.pathname === PEER_PATH && commands) return commands.handlePeer(request);
    if (target.url.pathname === AGENT_PATH && hub) {
      return bearerMatches(request, token)
        ? hub.handle(request)
        : new OrcaError("unauthorized", "missing or wrong cluster token").toResponse();
    }
    // The dashboard's page and script (no data: it reads the API with the token the browser is given).
    return uiResponse(request, target.url.pathname) ?? serveApi(request, target.url);
  };
  // The proxy listens early too (its address goes in this server's record), answering 503 until the plane is up.
  let listeners: NodeListeners;
  try {
    listeners = new NodeListeners({ ...opts, what: "server", log }, apiFetch);
  } catch (err) {
    wasm.close();
    store.close();
    throw err;
  }
  const { api: apiServer, http: httpServer, https: httpsServer } = listeners;
  const stopEarly = async (err: unknown): Promise<never> => {
    await commands?.close();
    await listeners.shutdown();
    wasm.close();
    store.close();
    throw err;
  };
  const advertise = opts.advertise ?? `${advertisedHost(opts.hostname)}:${apiServer.addr.port}`;
  const runtimes = await offeredRuntimes(containers.engine);
  const proxyAddress = `${advertise.slice(0, advertise.lastIndexOf(":"))}:${httpServer.addr.port}`;
  let facts = {
    ...localFacts(opts.labels ?? {}, gpus, runtimes, proxyAddress),
    ...(opts.noWorkloads && { noWorkloads: true }),
  };
  try {
    const fresh = !(await ControlLog.exists(opts.home, store));
    const joined = opts.join && fresh ? await requestJoin(opts.join, token, nodeId, advertise) : undefined;
    if (opts.join && !fresh) log(`already a member of a cluster (its log is in ${opts.home}): --join ignored`);
    // The cluster's secrets key: a joining server takes its cluster's; the first server makes it.
    box = joined?.secretsKey
      ? await SecretBox.adopt(opts.home, joined.secretsKey)
      : await SecretBox.loadOrCreate(opts.home);
    commands = await ControlLog.open({
      home: opts.home,
      id: nodeId,
      store,
      token,
      mode: joined ? "join" : "bootstrap",
      ...(joined && { peers: Object.fromEntries(joined.members.map((m) => [m.id, m.address])) }),
      onFatal: fatal("the Raft log"),
      log,
    });
    await commands.ready(30_000);
    if (joined) await promoteWhenCaughtUp(commands, opts.join!, token, joined.commit);
    // The leader's record is written before it serves (peers find it by it); a follower's is sent once it serves.
    else if (commands.isLeader) await registerSelf(commands, token, advertise, facts);
  } catch (err) {
    await stopEarly(err);
  }
  const log_ = commands!;
  const secrets = new Secrets({ store, box: box!, commands: log_ });
  const nodeCerts = new NodeCertificates(
    store,
    (l) => log_.onApplied(l),
    httpsServer?.addr.port,
    (spec) => secrets.resolve(spec),
  );
  nodeCerts.onChange = () => httpsServer?.reload();
  // The leader gets the domains' certificates, when this server serves HTTPS.
  const issuer = httpsServer && new CertIssuer({
    store,
    commands: log_,
    acme: { directory: LETS_ENCRYPT, ...opts.acme },
    leads: () => log_.isLeader,
    spread: () => hub?.spread(log_.applied, 5000) ?? Promise.resolve(),
    log,
    ...(opts.certCheckSecs !== undefined && { checkMs: opts.certCheckSecs * 1000 }),
  });
  log_.onApplied((changed) => {
    if (changed.has("deploy") || changed.has("snapshot")) issuer?.wake();
  });
  // The leader runs cron jobs and delivers messages; each firing is claimed and each ack stored through the log.
  const jobs = new JobTriggers({
    store,
    commands: log_,
    runtimes: { wasm, container: containers },
    log,
    leads: () => log_.isLeader,
    remote: (service, input) => runElsewhere(service, input),
  });
  // A job of a service placed on other nodes runs on one of them (ready first); the leader records the outcome.
  const runElsewhere = async (service: string, input: JobInput): Promise<JobResult> => {
    const reasons: string[] = [];
    for (const node of plane.placing.holders(service)) {
      const address = log_.addressOf(node);
      if (!address) continue;
      let res: Response;
      try {
        const job = { env: input.env, stdin: toBase64(input.stdin), topic: input.topic };
        res = await postToNode(address, token, `/api/v1/services/${service}/jobs`, job, JOB_TIMEOUT_MS);
      } catch (err) {
        // Not reached: another node may run it. Reached and then lost: its outcome is unknown, not run twice.
        if (!/connect|refused/i.test((err as Error).message)) throw err;
        reasons.push(`${node}: ${(err as Error).message}`);
        continue;
      }
      const body = await res.json().catch(() => undefined);
      if (!res.ok) throw new Error(`${node} answered ${res.status}: ${OrcaError.fromJSON(body)?.message ?? ""}`);
      return body as JobResult;
    }
    throw new Error(reasons.length > 0 ? reasons.join("; ") : "no node runs it");
  };
  // The leader first, then the other servers (workers keep no bytes for others).
  const servers = () => {
    const ids = log_.members().filter((m) => !m.facts?.worker && m.id !== log_.id).map((m) => m.id);
    const leader = log_.leader;
    return [...ids.filter((id) => id === leader), ...ids.filter((id) => id !== leader)]
      .flatMap((id) => log_.addressOf(id) ? [{ id, address: log_.addressOf(id)! }] : []);
  };
  const fetchMissing = (kind: "module" | "blob", hash: string) => fetchFromPeers(servers(), token, store, kind, hash);
  /** Sends a follower's write to the leader's API. */
  const toLeader = async (path: string, body: unknown) => {
    const leader = log_.leader;
    const address = leader === undefined ? undefined : log_.addressOf(leader);
    if (!address) throw new Error("no leader known to send it to");
    const res = await postToNode(address, token, `/api/v1${path}`, body, 10_000);
    await res.body?.cancel();
    if (!res.ok) throw new Error(`the leader answered ${res.status}`);
  };
  const publishEvent = async (name: string, data: Record<string, unknown>) => {
    if (log_.isLeader) return await jobs.emit(name, data);
    await toLeader(`/cluster/events/${encodeURIComponent(name)}`, data);
  };
  // The leader starts a deploy's new versions on the servers they are placed on, ahead of the commit.
  const prepare = async (node: string, services: LocalService[]): Promise<"prepared" | "unreachable"> => {
    const address = log_.addressOf(node);
    if (!address || !watch.healthy(node)) return "unreachable";
    // A node seen offline meanwhile is not waited on: a stopped process keeps its socket open, answering nothing.
    const offline = new AbortController();
    const check = setInterval(() => watch.healthy(node) || offline.abort(), 250);
    let res: Response;
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(120_000), offline.signal]);
      res = await postToNode(address, token, "/api/v1/cluster/prepare", { services }, signal);
    } catch {
      return "unreachable";
    } finally {
      clearInterval(check);
    }
    const body = await res.json().catch(() => undefined);
    if (!res.ok) throw OrcaError.fromJSON(body) ?? new OrcaError("unavailable", `it answered ${res.status}`);
    return "prepared";
  };
  const report = async (r: { states: ReplicaReport[]; gone: string[] }) => {
    if (log_.isLeader) await log_.propose({ type: "replica-states", node: nodeId, at: Date.now(), ...r });
    else await toLeader(`/cluster/nodes/${encodeURIComponent(nodeId)}/replicas`, r);
  };
  const forwarder = new Forwarder({
    credential: await forwardCredential(token),
    proxyOf: (node) => log_.members().find((m) => m.id === node)?.facts?.proxy,
  });
  // Workers (`orca join`) keep a socket to the leader; it sends them the state they run from after each change.
  const agents = new AgentHub({
    log: log_,
    view: () => JSON.stringify(dumpView((text) => store.sql(text))),
    secretsKey: () => box!.exported(),
    replicas: (id, report) => cluster.replicas(id, report),
    onLog: log,
  });
  hub = agents;
  log_.onApplied((changed) => {
    const kinds = [
      ...["deploy", "place", "replica-states", "member", "member-removed", "drain", "snapshot"] as const,
      ...["cert-issued", "cert-removed", "acme-challenge", "secret-set", "secret-removed"] as const,
    ];
    if (kinds.some((k) => changed.has(k))) agents.changed();
  });
  const watch = new NodeWatch({
    self: nodeId,
    sinceHeard: (node) => agents.sinceHeard(node) ?? log_.sinceHeard(node),
    isLeader: () => log_.isLeader,
    timeoutMs: (opts.nodeTimeoutSecs ?? 30) * 1000,
  });
  const plane = new ControlPlane({
    store,
    commands: log_,
    wasm,
    containers,
    log,
    jobs,
    fetchMissing,
    publishEvent,
    secrets,
    ...(opts.watchdogSecs !== undefined && { watchdogMs: opts.watchdogSecs * 1000 }),
    leads: () => log_.isLeader,
    cluster: {
      node: nodeId,
      members: () => log_.members(),
      forwarder,
      healthy: (node) => watch.healthy(node),
      report,
      prepare,
      rolloutFigures: (node, service) => cluster.rolloutFiguresOf(node, service),
    },
  });
  incident = (service, error) => plane.emit("orca.instance.crashed", { service, error });
  // A server that becomes the leader picks up the jobs at once (a firing missed during the election runs now).
  let leading = log_.isLeader;
  const watchLeadership = setInterval(() => {
    if (log_.isLeader && !leading) {
      jobs.wake();
      issuer?.wake();
    }
    if (!log_.isLeader) agents.redirectAll();
    leading = log_.isLeader;
  }, 250);
  await plane.restore();
  // The leader moves the replicas of nodes that stopped answering, and places those missing.
  let ticks = 0;
  const upkeep = setInterval(async () => {
    watch.tick();
    plane.reportReplicas();
    if (log_.isLeader) plane.replan().catch((err) => log(`placements not updated: ${(err as Error).message ?? err}`));
    plane.rollouts.tick();
    // A Docker engine that came up (or went away) since the start changes what this server offers the scheduler.
    if (++ticks % 10 !== 0) return;
    const now = await offeredRuntimes(containers.engine);
    if (now.length === facts.runtimes?.length) return;
    const next = { ...facts, runtimes: now };
    registerSelf(log_, token, advertise, next).then(
      () => facts = next,
      (err) => log(`this server's runtimes in the registry are not updated: ${err.message ?? err}`),
    );
  }, 1000);

  const cluster = new Cluster(log_, token, node);
  const metrics = startMetrics({
    plane,
    jobs,
    raft: () => log_.status(),
    wasmHosts: () => wasm.hosts(),
    proxyPorts: () => listeners.proxyPorts(),
  });
  listeners.nodeMetrics = metrics;
  const api = createApi({
    cluster,
    secrets,
    metrics,
    images: containers,
    plane,
    store,
    jobs,
    token,
    version: VERSION,
    ...(opts.limits && { limits: opts.limits }),
    onError: (err) => log(`api error: ${(err as Error).stack ?? err}`),
  });
  // Only a caller with the token is forwarded or waits on a read barrier; the others get the API's own 401.
  serveApi = async (request, url) =>
    (bearerMatches(request, token) ? await cluster.route(request, url) : undefined) ?? api.fetch(request);
  if (!log_.isLeader) {
    registerSelf(log_, token, advertise, facts).catch((err) =>
      log(`this server's record in the registry (labels, capacity, GPUs) is not updated: ${err.message ?? err}`)
    );
  }
  listeners.bind({ ...nodeProxies(plane, forwarder, nodeCerts, log), lookup: (name) => nodeCerts.lookup(name) });
  issuer?.start();
  const urls = listeners.urls();
  return {
    apiUrl: urls.api,
    httpUrl: urls.http,
    ...(urls.https && { httpsUrl: urls.https }),
    ...(urls.metrics && { metricsUrl: urls.metrics }),
    token,
    plane,
    async close() {
      issuer?.close();
      await listeners.shutdown();
      clearInterval(watchLeadership);
      clearInterval(upkeep);
      agents.close();
      await plane.shutdown();
      await log_.close();
      wasm.close();
      store.close();
    },
  };
}
