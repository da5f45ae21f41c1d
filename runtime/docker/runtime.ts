/**
 * The container implementation of `Runtime` on a real Docker engine: one
 * network per project, aliases, an internal network across projects, limits,
 * GPUs, replicas named `<project>-<name>-<n>`, readiness before traffic.
 */

import { OrcaError } from "../../errors.ts";
import type {
  ExecResult,
  Healing,
  HttpContext,
  HttpServing,
  JobInput,
  JobResult,
  JobRunning,
  LogLine,
  LogOpts,
  ProbeFailure,
  ReplicaHealth,
  ResourceStats,
  Runtime,
  WorkloadHandle,
  WorkloadSpec,
  WorkloadStatus,
} from "../types.ts";
import { demux, Engine, engineMessage, engineStatus } from "./engine.ts";
import { readHostFacts } from "./gpu.ts";
import { waitReady } from "./probe.ts";
import { imagePresent, pullImage } from "./images.ts";
import { concat } from "../bytes.ts";
import { UpstreamPool } from "../h1.ts";
import { serveReplicas } from "./serve.ts";
import { runContainerJob } from "./job.ts";
import { findOrphans, type Orphan, removeOrphan } from "./orphans.ts";
import {
  type Inspect,
  inspect,
  probeReplica,
  type Replica,
  replicaHealth,
  startReplica,
  tailReplica,
  watchDeaths,
} from "./replicas.ts";
import { cpuPercentOf, type DockerStats, explainEngineError, jobOnly, mergeLogs } from "./util.ts";
import { containerName, createContainerBody, type HostFacts, INTERNAL_NETWORK, projectNetwork } from "./spec.ts";

interface Workload {
  spec: WorkloadSpec;
  /** Set by start() and stop(): what the containers should be doing. */
  phase: "created" | "started" | "stopped";
  replicas: Replica[];
  next: number;
  failures: number;
  requests: number;
}

export class ContainerRuntime implements Runtime, HttpServing, JobRunning, Healing {
  readonly kind = "container" as const;
  readonly engine: Engine;
  readonly #workloads = new Map<string, Workload>();
  /** Keep-alive connections to the replicas' published ports. */
  readonly #upstream = new UpstreamPool();
  readonly #node: string;
  /** Containers (ids) and networks (names) being made, and job containers: not orphans, though no workload lists them. */
  readonly #pending = new Set<string>();
  #host?: HostFacts;

  /** `node` labels every container this runtime creates; orphans are looked for among them only. */
  constructor(engine: Engine, node: string) {
    this.engine = engine;
    this.#node = node;
  }

  async create(spec: WorkloadSpec): Promise<WorkloadHandle> {
    const s = spec.service;
    const network = projectNetwork(s.project);
    this.#pending.add(network);
    try {
      return await this.#create(spec);
    } finally {
      this.#pending.delete(network);
    }
  }

  async #create(spec: WorkloadSpec): Promise<WorkloadHandle> {
    const s = spec.service;
    await this.#ensureImage(s.image!);
    await this.#ensureNetwork(projectNetwork(s.project), { "orca.project": s.project });
    if (s.internal) await this.#ensureNetwork(INTERNAL_NETWORK, {});
    this.#host ??= await readHostFacts();
    const replicas: Replica[] = [];
    // A service that only runs jobs (cron/queue/event, no http route) keeps no container running.
    const longRunning = jobOnly(s) ? 0 : s.replicas;
    try {
      for (let n = 1; n <= longRunning; n++) replicas.push(await this.#createReplica(spec, n));
    } catch (err) {
      for (const r of replicas) {
        await this.engine.request("DELETE", `/containers/${r.id}`, { query: { force: true } }).catch(() => {});
      }
      throw explainEngineError(err, s.name);
    } finally {
      for (const r of replicas) this.#pending.delete(r.id);
    }
    this.#workloads.set(spec.id, { spec, phase: "created", replicas, next: 0, failures: 0, requests: 0 });
    return { id: spec.id, runtime: "container" };
  }

  /** Replica `n`'s container: the same workload's kept from before (adopted), or a new one. */
  async #createReplica(spec: WorkloadSpec, n: number): Promise<Replica> {
    const s = spec.service;
    const name = containerName(s, n);
    const adopted = await this.#moveAside(name, spec.id);
    if (adopted) return { n, id: adopted, name, routed: true };
    const body = createContainerBody(s, spec.id, n, this.#host!, this.#node);
    const created = await this.engine.request<{ Id: string }>("POST", "/containers/create", { query: { name }, body });
    this.#pending.add(created.Id);
    if (s.internal) {
      await this.engine.request("POST", `/networks/${INTERNAL_NETWORK}/connect`, {
        body: { Container: created.Id, EndpointConfig: { Aliases: [s.name, ...s.aliases] } },
      });
    }
    return { n, id: created.Id, name, routed: true };
  }

  async start(handle: WorkloadHandle): Promise<void> {
    const w = this.#get(handle);
    const s = w.spec.service;
    w.phase = "started";
    for (const r of w.replicas) {
      try {
        await startReplica(this.engine, r, s);
      } catch (err) {
        throw explainEngineError(err, s.name);
      }
    }
    await Promise.all(w.replicas.map((r) => this.#ready(w, r)));
  }

  /** Waits until `r` passes readiness (or, without it, accepts connections), as a replica must before traffic. */
  #ready(w: Workload, r: Replica): Promise<void> {
    const s = w.spec.service;
    const address = s.port && r.ip ? { hostname: r.ip, port: s.port } : undefined;
    return waitReady(s, address, async () => (await inspect(this.engine, r.id)).State).catch((err) => {
      throw new OrcaError(
        "unavailable",
        `service ${s.project}/${s.name}: replica ${r.name} did not become ready: ${err.message}`,
        { hint: `orca logs ${s.project}/${s.name} shows what it printed` },
      );
    });
  }

  async replicas(handle: WorkloadHandle): Promise<ReplicaHealth[]> {
    const w = this.#get(handle);
    if (w.phase !== "started") return [];
    return await Promise.all(w.replicas.map((r) => replicaHealth(this.engine, r)));
  }

  async restart(handle: WorkloadHandle, replica: number): Promise<void> {
    const w = this.#get(handle);
    const i = w.replicas.findIndex((r) => r.n === replica);
    if (i < 0 || w.phase !== "started") return;
    let r = w.replicas[i];
    r.routed = false;
    const s = w.spec.service;
    try {
      // Stopped, or gone: the same container starts again (its writable layer kept, as a restart keeps it); a new
      // one is made when it is gone.
      const health = await replicaHealth(this.engine, r);
      if (health.alive) {
        await this.engine.request("POST", `/containers/${r.id}/stop`, { query: { t: 5 } });
      } else if (health.detail === "the container is gone") {
        r = { ...(await this.#createReplica(w.spec, replica)), routed: false };
        w.replicas[i] = r;
      }
      await startReplica(this.engine, r, s);
    } catch (err) {
      throw explainEngineError(err, s.name);
    } finally {
      this.#pending.delete(r.id);
    }
    await this.#ready(w, r);
    r.routed = true;
  }

  /** Calls `onDeath` as soon as a container of this node ends; returns the function that stops it. */
  watchDeaths(onDeath: () => void): () => void {
    return watchDeaths(this.engine, this.#node, onDeath);
  }

  route(handle: WorkloadHandle, replica: number, routed: boolean): void {
    const r = this.#workloads.get(handle.id)?.replicas.find((r) => r.n === replica);
    if (r) r.routed = routed;
  }

  probe(handle: WorkloadHandle, replica: number, path: string, timeoutMs: number): Promise<ProbeFailure> {
    const w = this.#get(handle);
    const r = w.replicas.find((r) => r.n === replica);
    if (!r) return Promise.resolve(`no replica ${replica}`);
    return probeReplica(r, w.spec.service, path, timeoutMs);
  }

  tail(handle: WorkloadHandle, replica: number, lines: number): Promise<string[]> {
    const r = this.#get(handle).replicas.find((r) => r.n === replica);
    return r ? tailReplica(this.engine, r, lines) : Promise.resolve([]);
  }

  async stop(handle: WorkloadHandle, timeoutMs: number): Promise<void> {
    const w = this.#get(handle);
    w.phase = "stopped";
    await Promise.all(
      w.replicas.map((r) =>
        this.engine.request("POST", `/containers/${r.id}/stop`, { query: { t: Math.ceil(timeoutMs / 1000) } }).catch(
          (err) => {
            if (engineStatus(err) !== 404) throw err;
          },
        )
      ),
    );
  }

  async remove(handle: WorkloadHandle): Promise<void> {
    const w = this.#workloads.get(handle.id);
    if (!w) return;
    for (const r of w.replicas) {
      await this.engine.request("DELETE", `/containers/${r.id}`, { query: { force: true } }).catch((err) => {
        if (engineStatus(err) !== 404) throw err;
      });
    }
    this.#workloads.delete(handle.id);
    await this.#pruneNetwork(projectNetwork(w.spec.service.project));
  }

  /** Deletes a project network no container uses any more (networks are a scarce address pool). */
  async #pruneNetwork(name: string): Promise<void> {
    const stillUsed = [...this.#workloads.values()].some((w) => projectNetwork(w.spec.service.project) === name);
    if (stillUsed) return;
    try {
      const net = await this.engine.request<{ Containers?: Record<string, unknown> }>("GET", `/networks/${name}`);
      if (Object.keys(net.Containers ?? {}).length === 0) await this.engine.request("DELETE", `/networks/${name}`);
    } catch {
      // already gone, or in use again: nothing to do
    }
  }

  async status(handle: WorkloadHandle): Promise<WorkloadStatus> {
    const w = this.#get(handle);
    const states = await Promise.all(
      w.replicas.map((r) => inspect(this.engine, r.id).then((i) => i.State).catch(() => undefined)),
    );
    const running = states.filter((s) => s?.Running).length;
    const oom = states.some((s) => s?.OOMKilled);
    const since = states.length
      ? Math.min(...states.map((s) => (s ? Date.parse(s.StartedAt) : Date.now())))
      : Date.now();
    if (w.phase !== "started") return { state: w.phase, instances: running, since };
    const state = running > 0 || w.replicas.length === 0 ? "running" : "failed";
    const message = running < w.replicas.length
      ? `${running}/${w.replicas.length} replicas running${oom ? " (out of memory: raise resources.memory)" : ""}`
      : undefined;
    return { state, instances: running, since, ...(message && { message }) };
  }

  async *logs(handle: WorkloadHandle, opts: LogOpts = {}): AsyncGenerator<LogLine> {
    const w = this.#get(handle);
    const streams = await Promise.all(w.replicas.map((r) =>
      this.engine.stream("GET", `/containers/${r.id}/logs`, {
        query: { stdout: 1, stderr: 1, timestamps: 1, follow: opts.follow ? 1 : 0, tail: opts.tail ?? "all" },
      })
    ));
    opts.signal?.addEventListener("abort", () => streams.forEach((s) => s.destroy()), { once: true });
    yield* mergeLogs(streams.map((s) => demux(s as AsyncIterable<Uint8Array>)));
  }

  async exec(handle: WorkloadHandle, cmd: string[]): Promise<ExecResult> {
    const w = this.#get(handle);
    const target = w.replicas[0];
    const { Id } = await this.engine.request<{ Id: string }>("POST", `/containers/${target.id}/exec`, {
      body: { Cmd: cmd, AttachStdout: true, AttachStderr: true },
    });
    const stream = await this.engine.stream("POST", `/exec/${Id}/start`, { body: { Detach: false, Tty: false } });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    for await (const frame of demux(stream as AsyncIterable<Uint8Array>)) {
      (frame.stream === "stdout" ? out : err).push(frame.data);
    }
    const { ExitCode } = await this.engine.request<{ ExitCode: number }>("GET", `/exec/${Id}/json`);
    return { exitCode: ExitCode, stdout: concat(out), stderr: concat(err) };
  }

  async stats(handle: WorkloadHandle): Promise<ResourceStats> {
    const w = this.#get(handle);
    let memoryBytes = 0, memoryLimitBytes = 0, cpuPercent = 0;
    for (const r of w.replicas) {
      const s = await this.engine.request<DockerStats>("GET", `/containers/${r.id}/stats`, {
        query: { stream: false },
      });
      memoryBytes += s.memory_stats?.usage ?? 0;
      memoryLimitBytes += s.memory_stats?.limit ?? 0;
      cpuPercent += cpuPercentOf(s);
    }
    return {
      memoryBytes,
      memoryLimitBytes,
      cpuPercent,
      requests: w.requests,
      errors: w.failures,
      instances: w.replicas.length,
    };
  }

  /** The raw engine view of a workload's containers (HostConfig included). */
  inspect(handle: WorkloadHandle): Promise<Inspect[]> {
    return Promise.all(this.#get(handle).replicas.map((r) => inspect(this.engine, r.id)));
  }

  /** Sends the request to the next routed replica (`serve.ts`). */
  serveHttp(handle: WorkloadHandle, request: Request, ctx: HttpContext): Promise<Response> {
    return serveReplicas(this.#get(handle), this.#upstream, request, ctx);
  }

  async runJob(handle: WorkloadHandle, input: JobInput): Promise<JobResult> {
    const w = this.#get(handle);
    this.#host ??= await readHostFacts();
    const result = await runContainerJob(this.engine, w.spec, this.#host, this.#node, input, this.#pending);
    w.requests++;
    if (result.exitCode !== 0) w.failures++;
    return result;
  }

  /** Containers Orca created that no workload owns (left by a crash or an older version). */
  async orphans(): Promise<Orphan[]> {
    const owned = new Set([...this.#workloads.values()].flatMap((w) => w.replicas.map((r) => r.id)));
    for (const id of this.#pending) owned.add(id);
    const used = new Set([...this.#workloads.values()].map((w) => projectNetwork(w.spec.service.project)));
    for (const name of this.#pending) used.add(name);
    return await findOrphans(this.engine, this.#node, owned, used);
  }

  removeOrphan(orphan: Orphan): Promise<void> {
    return removeOrphan(this.engine, orphan);
  }

  /** Whether the engine has `image` locally. */
  imagePresent(image: string): Promise<boolean> {
    return imagePresent(this.engine, image);
  }

  /** Pulls `image`, yielding the engine's progress objects (`status`, `progress`, `id`, or `error`). */
  pull(image: string): AsyncGenerator<Record<string, unknown>> {
    return pullImage(this.engine, image);
  }

  async #ensureImage(image: string): Promise<void> {
    if (await this.imagePresent(image)) return;
    try {
      for await (const p of this.pull(image)) if (p.error) throw new Error(String(p.error));
      await this.engine.request("GET", `/images/${encodeURIComponent(image)}/json`);
    } catch (err) {
      throw new OrcaError(
        "not_found",
        `image ${image} is not on this node, and pulling it failed: ${engineMessage(err)}`,
        {
          hint: "load it with `docker load -i image.tar` or `docker import rootfs.tar " + image +
            "` (examples/images/build.sh builds the examples' images)",
        },
      );
    }
  }

  async #ensureNetwork(name: string, labels: Record<string, string>): Promise<void> {
    try {
      await this.engine.request("GET", `/networks/${name}`);
    } catch (err) {
      if (engineStatus(err) !== 404) throw err;
      await this.engine.request("POST", "/networks/create", {
        body: {
          Name: name,
          Driver: "bridge",
          CheckDuplicate: true,
          Labels: { "orca.managed": "true", "orca.node": this.#node, ...labels },
        },
        ok: [201, 409],
      });
    }
  }

  /**
   * A container already named `name`: the same workload's (kept running across
   * an Orca restart: adopted, its id returned), or a previous version's
   * (renamed, so the new one can take the name while the old one drains).
   */
  async #moveAside(name: string, workload: string): Promise<string | undefined> {
    let existing: Inspect;
    try {
      existing = await inspect(this.engine, name);
    } catch (err) {
      if (engineStatus(err) === 404) return undefined;
      throw err;
    }
    if (existing.Config.Labels["orca.workload"] === workload) return existing.Id;
    await this.engine.request("POST", `/containers/${existing.Id}/rename`, {
      query: { name: `${name}-old-${existing.Id.slice(0, 8)}` },
    });
    return undefined;
  }

  #get(handle: WorkloadHandle): Workload {
    const w = this.#workloads.get(handle.id);
    if (!w) throw new OrcaError("not_found", `no container workload ${handle.id}`);
    return w;
  }
}
