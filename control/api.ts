/**
 * The REST API under /api/v1 (hono). Every call needs the cluster token as a
 * bearer token. Errors become JSON `{error: {code, message, where, hint}}` in
 * one place.
 */

import { type Context, Hono } from "hono";
import { isReservedEvent, type NodeGpu, sha256Hex } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { parseHost } from "../proxy/mod.ts";
import { wasmKind } from "../runtime/mod.ts";
import { bearerMatches } from "./auth.ts";
import { type BodyLimits, defaultBodyLimits, readBody, readJson, SMALL_JSON_BYTES } from "./body.ts";
import { type Cluster, FORWARDED } from "./cluster.ts";
import { answerErrors, replicaRoutes, wholeNumber } from "./replica_routes.ts";
import { checkReport } from "./replica_report.ts";
import { checkFacts } from "./node_facts.ts";
import type { JobTriggers } from "./jobs.ts";
import type { ControlPlane, DeployRequest } from "./plane.ts";
import { requester } from "./deploy_request.ts";
import { readHistory } from "./history.ts";
import { readCerts } from "./cert_store.ts";
import { domainStates } from "./certificates.ts";
import type { Store } from "./store.ts";
import type { Secrets } from "./secrets.ts";
import { secretRoutes } from "./secret_routes.ts";
import type { NodeMetrics } from "./metrics.ts";
import { metricsAnswer } from "./metrics_server.ts";

/** What a server reports about itself (in `GET /cluster/status`, and so in `GET /nodes`). */
export interface NodeReport {
  id: string;
  version: string;
  runtimes: { wasm: boolean; container: boolean };
  /** Wasm guest host processes (0: guests run in the server) and how many were killed or died. */
  wasmHosts?: { workers: number; restarts: number };
  gpus: NodeGpu[];
}

/** Image operations of the container runtime, for `orca deploy` to show pull progress. */
export interface ImageStore {
  imagePresent(image: string): Promise<boolean>;
  pull(image: string): AsyncIterable<Record<string, unknown>>;
}

export interface ApiOptions {
  /** The servers of the cluster: membership and what each reports. */
  cluster: Cluster;
  images?: ImageStore;
  plane: ControlPlane;
  store: Store;
  jobs: JobTriggers;
  /** The node's metrics, at GET /metrics. */
  metrics?: NodeMetrics;
  /** `orca secrets`: absent, the routes are not there. */
  secrets?: Secrets;
  token: string;
  version: string;
  /** Largest request bodies accepted, in bytes (defaults: `defaultBodyLimits`). */
  limits?: Partial<BodyLimits>;
  onError?: (err: unknown) => void;
}

export function createApi(opts: ApiOptions): Hono {
  const { plane, store, jobs } = opts;
  const limits: BodyLimits = { ...defaultBodyLimits, ...opts.limits };
  const app = new Hono().basePath("/api/v1");

  app.use("*", async (c, next) => {
    if (!bearerMatches(c.req.raw, opts.token)) {
      const presented = /^bearer[ \t]+\S/i.test(c.req.header("authorization") ?? "");
      throw new OrcaError("unauthorized", presented ? "wrong API token" : "missing API token", {
        hint: "send Authorization: Bearer <token>; the token is in $ORCA_HOME/cluster.token on the server",
      });
    }
    await next();
  });

  app.get("/health", (c) => c.json({ ok: true, version: opts.version }));

  app.get("/nodes", async (c) => {
    const reports = await opts.cluster.report();
    const placed = plane.placing.replicasByNode();
    return c.json({
      nodes: reports.map(({ node, ...member }) => ({ ...node, ...member, replicas: placed.get(member.id) ?? 0 })),
    });
  });

  app.get("/cluster/status", async (c) => c.json(await opts.cluster.status()));

  app.post("/cluster/join", async (c) => {
    const { id, address } = memberOf(await readJson(c.req.raw, SMALL_JSON_BYTES, "join request"));
    // A server joining gets the cluster's secrets key with the answer (it presented the cluster token).
    return c.json({ ...await opts.cluster.join(id, address), secretsKey: opts.secrets?.exportedKey() });
  });

  app.post("/cluster/promote", async (c) => {
    const { id } = memberOf(await readJson(c.req.raw, SMALL_JSON_BYTES, "promote request"), false);
    await opts.cluster.promote(id);
    return c.json({ id, role: "voter" });
  });

  // Orca's own events raised on any server (a guest host killed there) are published by the leader: followers send
  // them here, and the cluster's routing brings them to the leader.
  app.post("/cluster/events/:name", async (c) => {
    const name = c.req.param("name");
    if (!isReservedEvent(name)) {
      throw new OrcaError("invalid", `only Orca's own events (orca.*) are raised here, not ${JSON.stringify(name)}`, {
        hint: "publish other events with POST /api/v1/events/<name>",
      });
    }
    const data = await readJson(c.req.raw, SMALL_JSON_BYTES, "event data");
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new OrcaError("invalid", "event data must be a JSON object");
    }
    return c.json({ event: name, deliveredTo: await jobs.emit(name, data as Record<string, unknown>) }, 201);
  });

  // A server tells the registry its address, labels, capacity and GPUs (it does at start when they changed).
  app.put("/cluster/members/:id", async (c) => {
    const body = await readJson(c.req.raw, SMALL_JSON_BYTES, "member record");
    const { id, address } = memberOf({ ...(body as object), id: c.req.param("id") });
    return c.json(await opts.cluster.update(id, address, checkFacts(body)));
  });

  app.post("/cluster/nodes/:id/drain", async (c) => {
    const { id } = memberOf({ id: c.req.param("id") }, false);
    await opts.cluster.drain(id, true);
    return c.json({ id, drain: true });
  });

  app.post("/cluster/nodes/:id/undrain", async (c) => {
    const { id } = memberOf({ id: c.req.param("id") }, false);
    await opts.cluster.drain(id, false);
    return c.json({ id, drain: false });
  });

  // A node's report of its workloads (ready, failed, gone), committed by the leader.
  app.post("/cluster/nodes/:id/replicas", async (c) => {
    const { id } = memberOf({ id: c.req.param("id") }, false);
    const report = checkReport(await readJson(c.req.raw, limits.deploy, "replica report"));
    await opts.cluster.replicas(id, report);
    return c.json({ id, states: report.states.length, gone: report.gone.length });
  });

  app.delete("/cluster/members/:id", async (c) => {
    const { id } = memberOf({ id: c.req.param("id") }, false);
    await opts.cluster.remove(id);
    return c.json({ id, removed: true });
  });

  // HEAD says whether the server has it; GET sends the bytes (a server fetches what a deploy needs from its peers).
  const stored = (has: (hash: string) => boolean, get: (hash: string) => Uint8Array) => (c: Context) => {
    const hash = checkHash(c.req.param("hash") ?? "");
    if (!has(hash)) return c.body(null, 404);
    return c.req.method === "HEAD" ? c.body(null, 200) : c.body(get(hash) as Uint8Array<ArrayBuffer>, 200);
  };
  app.on(["GET", "HEAD"], "/modules/:hash", stored((h) => store.hasModule(h), (h) => store.getModule(h)));

  /** The request body, checked against its size limit and the sha256 in the path. */
  const verifiedBody = async (c: Context, what: "module" | "file") => {
    const hash = checkHash(c.req.param("hash") ?? "");
    const bytes = await readBody(c.req.raw, limits.module, what);
    if ((await sha256Hex(bytes)) !== hash) {
      throw new OrcaError("invalid", `${what} bytes do not match their sha256`, { where: hash });
    }
    return { hash, bytes };
  };

  app.put("/modules/:hash", async (c) => {
    const { hash, bytes } = await verifiedBody(c, "module");
    if (!wasmKind(bytes)) {
      throw new OrcaError("wasm", "the module is not WebAssembly (no `\\0asm` header)", {
        hint: "point `module` at a .wasm file built for WASI (a component or a preview1 core module)",
      });
    }
    store.putModule(hash, bytes);
    return c.json({ hash, size: bytes.length }, 201);
  });

  app.on(["GET", "HEAD"], "/blobs/:hash", stored((h) => store.hasBlob(h), (h) => store.getBlob(h)));

  app.put("/blobs/:hash", async (c) => {
    const { hash, bytes } = await verifiedBody(c, "file");
    store.putBlob(hash, bytes);
    return c.json({ hash, size: bytes.length }, 201);
  });

  app.post("/deploy", async (c) => {
    const body = await readJson(c.req.raw, limits.deploy, "deploy request");
    // `?plan=1`: what the deploy would place where, and why; nothing changes.
    if (c.req.query("plan") === "1") return c.json(await plane.planDeploy(body as DeployRequest));
    return c.json(await plane.deploy(body as DeployRequest));
  });

  app.get("/services", async (c) => c.json({ services: await plane.status() }));

  // How each domain is served over HTTPS: its certificate's state, expiry, and the CA's last error.
  app.get("/certificates", (c) => {
    const specs = store.services().map((s) => s.spec);
    return c.json({ domains: domainStates(specs, readCerts((text) => store.sql(text)), Date.now()) });
  });

  app.get("/deploys", (c) => c.json({ deploys: plane.deploys(limitOf(c.req.query("limit"), 20)) }));

  // `orca history [service]`: what each deploy did to each service, newest first.
  app.get("/history", (c) => {
    const service = c.req.query("service");
    const key = service === undefined ? undefined : plane.resolve(service);
    return c.json({ history: readHistory((text) => store.sql(text), key, limitOf(c.req.query("limit"), 50)) });
  });

  app.get("/services/:project/:name/rollout", (c) => {
    const key = plane.resolve(serviceKey(c.req.param()));
    // `?here=1`: what this server alone measured (the leader sums every server's to judge).
    if (c.req.query("here") === "1") return c.json(plane.rollouts.here(key));
    const status = plane.rollouts.status(key);
    if (!status) {
      throw new OrcaError("not_found", `${key} has had no canary`, {
        hint: '[service.rollout] strategy = "canary" starts one at its next deploy',
      });
    }
    return c.json(status);
  });

  app.post("/services/:project/:name/rollback", async (c) => {
    const body = await readJson(c.req.raw, SMALL_JSON_BYTES, 'rollback request {"to": <deploy id>}');
    const { to, by } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
    if (to !== undefined && !(Number.isSafeInteger(to) && (to as number) >= 1)) {
      throw new OrcaError("invalid", "to must be a deploy id (a whole number from 1), as orca history lists them");
    }
    const who = requester({ projects: {}, ...(by !== undefined && { by: by as string }) });
    return c.json(await plane.rollback(serviceKey(c.req.param()), to as number | undefined, who));
  });

  // `orca redeploy`: the service started anew at a new version of what it runs (503 naming a node that does not answer).
  app.post("/services/:project/:name/redeploy", async (c) => {
    const body = await readJson(c.req.raw, SMALL_JSON_BYTES, 'redeploy request {"by": "<who>"}');
    const by = typeof body === "object" && body !== null ? (body as Record<string, unknown>).by : undefined;
    const who = requester({ projects: {}, ...(by !== undefined && { by: by as string }) });
    return c.json(await plane.redeploy(serviceKey(c.req.param()), who));
  });

  // A placed service's stats: the sum over every node that runs a replica, each node's own beside it (`?here=1`:
  // this node's only).
  app.get("/services/:project/:name/stats", async (c, next) => {
    const key = plane.resolve(`${c.req.param("project")}/${c.req.param("name")}`);
    const nodes = plane.placing.placedOn(key);
    if (c.req.query("here") === "1" || nodes === undefined) return await next();
    return c.json(
      await opts.cluster.statsOf(key, nodes, () => plane.ops.stats(key)),
    );
  });

  // A service with no replica here: its logs and exec are answered by a server that runs one (once).
  app.use("/services/:project/:name/:op{logs|exec}", async (c, next) => {
    const key = plane.resolve(`${c.req.param("project")}/${c.req.param("name")}`);
    const nodes = plane.runsHere(key) ? [] : plane.placing.holders(key);
    if (nodes.length > 0 && !c.req.raw.headers.has(FORWARDED)) {
      const answer = await opts.cluster.forwardTo(nodes, c.req.raw, new URL(c.req.url));
      if (answer) return answer;
    }
    await next();
  });

  app.get("/images", async (c) => {
    const name = c.req.query("name");
    if (!name) throw new OrcaError("invalid", "which image? ?name=<image>");
    if (!opts.images) throw new OrcaError("unsupported", "this node has no container runtime");
    return c.json({ image: name, present: await opts.images.imagePresent(name) });
  });

  app.post("/images/pull", (c) => {
    const name = c.req.query("name");
    if (!name) throw new OrcaError("invalid", "which image? ?name=<image>");
    if (!opts.images) throw new OrcaError("unsupported", "this node has no container runtime");
    const images = opts.images;
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          for await (const p of images.pull(name)) controller.enqueue(encoder.encode(JSON.stringify(p) + "\n"));
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          controller.enqueue(encoder.encode(JSON.stringify({ error: message }) + "\n"));
        }
        controller.close();
      },
    });
    return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
  });

  app.post("/queues/:topic", async (c) => {
    const body = await readBody(c.req.raw, limits.message, "queue message");
    const ndjson = (c.req.header("content-type") ?? "").startsWith("application/x-ndjson");
    const messages = ndjson ? splitLines(body) : [body];
    if (messages.length === 0) throw new OrcaError("invalid", "no message to publish");
    return c.json({ topic: c.req.param("topic"), ids: await jobs.publish(c.req.param("topic"), messages) }, 201);
  });

  app.get("/queues", (c) => c.json({ topics: jobs.queues.topics() }));

  app.get(
    "/queues/dead",
    (c) => c.json({ dead: jobs.queues.dead(c.req.query("topic"), limitOf(c.req.query("limit"), 100)) }),
  );

  app.post("/events/:name", async (c) => {
    const name = c.req.param("name");
    if (isReservedEvent(name)) {
      throw new OrcaError(
        "invalid",
        `event name ${JSON.stringify(name)} is reserved: names under orca. are Orca's own`,
        {
          hint: "pick another prefix",
        },
      );
    }
    const body = await readBody(c.req.raw, limits.message, "event");
    return c.json({ event: name, deliveredTo: await jobs.emit(name, body) }, 201);
  });

  app.delete("/services/:project/:name", async (c) => c.json(await plane.remove(serviceKey(c.req.param()))));

  app.get("/services/:project/:name/runs", (c) => {
    const key = plane.resolve(`${c.req.param("project")}/${c.req.param("name")}`);
    return c.json({ service: key, runs: jobs.runs.runs(key, limitOf(c.req.query("limit"), 50)) });
  });

  replicaRoutes(app, plane, limits);
  if (opts.secrets) secretRoutes(app, opts.secrets);
  const metrics = opts.metrics;
  if (metrics) {
    app.on(["GET", "HEAD"], "/metrics", (c) => metricsAnswer(metrics, c.req.raw, "/api/v1/metrics", () => {}));
  }

  answerErrors(app, opts.onError);

  return app;
}

function serviceKey(p: { project: string; name: string }): string {
  return `${p.project}/${p.name}`;
}

function limitOf(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : wholeNumber(text, "limit", 1, 10_000);
}

/** A query parameter that must be a whole number in [min, max], written in plain digits. */

/** Splits NDJSON-style input into one message per non-empty line. */
function splitLines(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i === body.length || body[i] === 10) {
      const line = body.subarray(start, i > start && body[i - 1] === 13 ? i - 1 : i);
      if (line.length > 0) out.push(line.slice());
      start = i + 1;
    }
  }
  return out;
}

/** A member's id (and address, `host:port`) from a request body. */
function memberOf(body: unknown, needAddress = true): { id: string; address: string } {
  const { id, address } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new OrcaError("invalid", "a server id is 1-64 letters, digits, . _ -");
  }
  if (!needAddress) return { id, address: "" };
  const host = typeof address === "string" ? parseHost(address) : undefined;
  if (!host || host.port === undefined || host.port === 0) {
    throw new OrcaError("invalid", "a server address is host:port, where its peers reach its API", {
      where: typeof address === "string" ? address.slice(0, 80) : undefined,
    });
  }
  return { id, address: address as string };
}

function checkHash(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new OrcaError("invalid", "module hash must be a sha256 in lowercase hex");
  return hash;
}
