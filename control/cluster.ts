/**
 * Servers forming one cluster: joining (a learner first, a voter once it has
 * caught up), leaving, what every member reports, and the API's rules for a
 * cluster: a write sent to a follower is forwarded to the leader, a read is
 * linearizable (ReadIndex) unless it asks for `?stale=1`, and while no leader
 * is known the answer is 503 with Retry-After, never a hang.
 */

import { OrcaError } from "../errors.ts";
import type { NodeFigures } from "./rollout_store.ts";
import type { ResourceStats } from "../runtime/mod.ts";
import type { MemberRecord } from "./machine.ts";
import { endToEnd, UpstreamPool } from "../runtime/mod.ts";
import type { NodeFacts } from "./node_facts.ts";
import type { ReplicaReport } from "./placement_store.ts";
import { type ControlLog, PEER_PATH } from "./raft_log.ts";

/** What `orca nodes` shows of each member. */
export interface MemberReport {
  id: string;
  address: string;
  /** `voter` or `learner` in the config in force; `worker` for a worker node; `none` for a server outside it. */
  role: "voter" | "learner" | "worker" | "none";
  leader: boolean;
  term?: number;
  commit?: number;
  applied?: number;
  /** Entries the member is behind the leader's commit index. */
  lag?: number;
  /** Milliseconds since this server last heard from it (0: it answered now); absent if never. */
  lastContactMs?: number;
  error?: string;
  /** What the member says of itself (version, runtimes, GPUs, guest hosts). */
  node?: Record<string, unknown>;
  /** What the registry holds of it, for the scheduler: labels, capacity, and whether it is drained. */
  labels?: Record<string, string>;
  capacity?: { memory: number; cpuMillis: number };
  drain?: boolean;
}

/** A member's answer to `GET /cluster/status`: its Raft state and what it says of itself. */
export type SelfReport = Record<string, unknown> & { term: number; commit: number; applied: number };

/** How long a write forwarded to the leader may take before the client is told it failed. */
const FORWARD_TIMEOUT_MS = 120_000;

/** Forwarded bodies up to this size are read whole and sent in one piece; bigger ones stream. */
const BUFFERED_BYTES = 256 << 10;

/** The header a forwarded request carries: a server forwards a request once, never again. */
export const FORWARDED = "x-orca-forwarded";
/** Calls that run where a service's replica is (not writes of the log): never sent to the leader for that. */
const AT_REPLICA = /^\/api\/v1\/services\/[^/]+\/[^/]+\/(exec|jobs)$/;
/** Routes that are this server's own, whoever leads. */
const LOCAL = new Set([PEER_PATH, "/api/v1/health", "/api/v1/cluster/status", "/api/v1/cluster/prepare"]);

export class Cluster {
  readonly #log: ControlLog;
  readonly #token: string;
  readonly #self: () => Promise<Record<string, unknown>>;
  readonly #lastContact = new Map<string, number>();
  /** Kept connections to the other servers' APIs (writes go on to the leader). */
  readonly #upstream = new UpstreamPool();

  /** `self`: what this server says of itself (its node report). */
  constructor(log: ControlLog, token: string, self: () => Promise<Record<string, unknown>>) {
    this.#log = log;
    this.#token = token;
    this.#self = self;
  }

  /** This server's answer to `GET /cluster/status`. */
  async status(): Promise<SelfReport> {
    const s = this.#log.status();
    return { ...await this.#self(), role: s.role, term: s.term, commit: s.commit, applied: s.applied };
  }

  /** Adds server `id` at `address` as a learner (leader only); says what it needs to catch up. */
  async join(id: string, address: string): Promise<{ leader: string; commit: number; members: MemberRecord[] }> {
    const config = this.#log.config();
    if (config.voters.includes(id)) {
      throw new OrcaError("conflict", `server ${id} is already a member of this cluster`, {
        hint: `a server restarted with a wiped data dir must be removed first: orca cluster remove ${id}, then join`,
      });
    }
    await this.#log.propose({ type: "member", id, address, at: Date.now() });
    // A learner asking again (its first start stopped before it caught up) goes on where it was: learners never vote.
    if (!config.learners.includes(id)) {
      await this.#log.changeMembers((c) => ({ voters: c.voters, learners: [...c.learners, id] }));
    }
    return { leader: this.#log.id, commit: this.#log.status().commit, members: this.#log.members() };
  }

  /** Changes registered server `id`'s record (its address, labels, capacity, GPUs); its drain flag stays. */
  async update(id: string, address: string, facts: NodeFacts): Promise<MemberRecord> {
    if (!this.#log.members().some((m) => m.id === id)) {
      throw new OrcaError("not_found", `no server ${id} in this cluster`, { hint: "orca nodes lists the members" });
    }
    await this.#log.propose({ type: "member", id, address, facts, at: Date.now() });
    return this.#log.members().find((m) => m.id === id)!;
  }

  /**
   * Drains node `id` (its replicas move off it one at a time, each new one ready before the old one stops, and it
   * gets no new one), or puts it back in service (leader only).
   */
  async drain(id: string, drain: boolean): Promise<void> {
    this.#mustKnow(id);
    await this.#log.propose({ type: "drain", id, drain });
  }

  /** Commits node `id`'s report of its workloads (leader only). */
  async replicas(id: string, report: { states: ReplicaReport[]; gone: string[] }): Promise<void> {
    this.#mustKnow(id);
    await this.#log.propose({ type: "replica-states", node: id, at: Date.now(), ...report });
  }

  /** Throws not found unless node `id` is in the registry. */
  #mustKnow(id: string): void {
    if (!this.#log.members().some((m) => m.id === id)) {
      throw new OrcaError("not_found", `no node ${id} in this cluster`, { hint: "orca nodes lists the nodes" });
    }
  }

  /** Makes learner `id` a voter (leader only), through joint consensus. */
  async promote(id: string): Promise<void> {
    const config = this.#log.config();
    if (config.voters.includes(id)) return;
    if (!config.learners.includes(id)) throw new OrcaError("not_found", `server ${id} is not a learner here`);
    await this.#log.changeMembers((c) => ({
      voters: [...c.voters, id],
      learners: c.learners.filter((l) => l !== id),
    }));
  }

  /** Takes server `id` out of the cluster (leader only); the last voter cannot be removed. */
  async remove(id: string): Promise<void> {
    const config = this.#log.config();
    const registered = this.#log.members().some((m) => m.id === id);
    if (!config.voters.includes(id) && !config.learners.includes(id) && !registered) {
      throw new OrcaError("not_found", `no server ${id} in this cluster`, { hint: "orca nodes lists the members" });
    }
    if (config.voters.length === 1 && config.voters[0] === id) {
      throw new OrcaError("invalid", `server ${id} is the cluster's only voter and cannot be removed`);
    }
    if (config.voters.includes(id) || config.learners.includes(id)) {
      await this.#log.changeMembers((c) => ({
        voters: c.voters.filter((v) => v !== id),
        learners: c.learners.filter((l) => l !== id),
      }));
    }
    await this.#log.propose({ type: "member-removed", id });
  }

  /**
   * Sends an API call about a service with no replica here to the first of `nodes` (servers that run one, ready
   * first) whose address is known; undefined when none is.
   */
  async forwardTo(nodes: string[], request: Request, url: URL): Promise<Response | undefined> {
    const address = nodes.map((n) => this.#log.addressOf(n)).find((a) => a !== undefined);
    return address === undefined
      ? undefined
      : await forward(this.#upstream, request, url, address, "the server that runs it");
  }

  /**
   * A service's live resource use summed over `nodes` (each asked for its own, `?here=1`; `local` answers for this
   * server), with each node's figures or why it did not answer.
   */
  async statsOf(
    service: string,
    nodes: string[],
    local: () => Promise<ResourceStats>,
  ): Promise<ResourceStats & { nodes: ({ node: string } & (ResourceStats | { error: string }))[] }> {
    const each = await Promise.all(nodes.map(async (node) => {
      try {
        if (node === this.#log.id) return { node, ...await local() };
        return { node, ...await this.#askNode(node, `/services/${service}/stats?here=1`, 5_000) as ResourceStats };
      } catch (err) {
        return { node, error: (err as Error).message };
      }
    }));
    const answered = each.filter((e): e is { node: string } & ResourceStats => !("error" in e));
    const sum = (pick: (s: ResourceStats) => number | undefined) => answered.reduce((n, s) => n + (pick(s) ?? 0), 0);
    const limits = answered.map((s) => s.memoryLimitBytes).filter((l): l is number => l !== undefined);
    const cpus = answered.map((s) => s.cpuPercent).filter((c): c is number => c !== undefined);
    return {
      memoryBytes: sum((s) => s.memoryBytes),
      ...(limits.length > 0 && { memoryLimitBytes: limits.reduce((a, b) => a + b, 0) }),
      ...(cpus.length > 0 && { cpuPercent: cpus.reduce((a, b) => a + b, 0) }),
      requests: sum((s) => s.requests),
      errors: sum((s) => s.errors),
      instances: sum((s) => s.instances),
      ...(answered.some((s) => s.incidents) && { incidents: sum((s) => s.incidents) }),
      ...(answered.some((s) => s.instancesMade) && { instancesMade: sum((s) => s.instancesMade) }),
      nodes: each,
    };
  }

  /** What `node` measured of each version of `service` during its canary (`?here=1`); undefined when it did not say. */
  async rolloutFiguresOf(node: string, service: string): Promise<Record<string, NodeFigures> | undefined> {
    return checkFigures(await this.#askNode(node, `/services/${service}/rollout?here=1`, 2_000).catch(() => undefined));
  }

  /** GETs `path` (under /api/v1) of another server with the cluster token; its JSON, or why not (an Error). */
  async #askNode(node: string, path: string, timeoutMs: number): Promise<unknown> {
    const address = this.#log.addressOf(node);
    if (!address) throw new Error("its address is not known");
    const res = await fetch(`http://${address}/api/v1${path}`, {
      headers: { authorization: `Bearer ${this.#token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`it answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return await res.json();
  }

  /** Every member as this server sees it, each asked for its own status (at most `timeoutMs` each). */
  async report(timeoutMs = 1000): Promise<MemberReport[]> {
    const config = this.#log.config();
    const me = this.#log.status();
    const members = new Map(this.#log.members().map((m) => [m.id, m]));
    const ids = new Set([...config.voters, ...config.learners, ...members.keys()]);
    const asked = [...ids].sort().map(async (id): Promise<MemberReport> => {
      const record = members.get(id);
      const role = config.voters.includes(id)
        ? "voter"
        : config.learners.includes(id)
        ? "learner"
        : record?.facts?.worker
        ? "worker"
        : "none";
      const address = record?.address ?? this.#log.addressOf(id) ?? "";
      const base = {
        id,
        address,
        role,
        leader: me.leader === id,
        ...(record?.facts && { labels: record.facts.labels, capacity: record.facts.capacity }),
        ...(record && { drain: record.drain }),
      } as const;
      try {
        const status = id === me.id ? await this.status() : await this.#ask(address, timeoutMs);
        this.#lastContact.set(id, Date.now());
        const { term, commit, applied } = status;
        return { ...base, term, commit, applied, lastContactMs: 0, node: status };
      } catch (err) {
        const seen = this.#lastContact.get(id);
        return {
          ...base,
          ...(seen !== undefined && { lastContactMs: Date.now() - seen }),
          error: err instanceof Error ? err.message : String(err),
        };
      }
    });
    const reports = await Promise.all(asked);
    const leaderCommit = reports.find((r) => r.leader)?.commit ?? me.commit;
    for (const r of reports) if (r.applied !== undefined) r.lag = Math.max(0, leaderCommit - r.applied);
    return reports;
  }

  async #ask(address: string, timeoutMs: number): Promise<SelfReport> {
    if (!address) throw new Error("no address registered");
    const res = await fetch(`http://${address}/api/v1/cluster/status`, {
      headers: { authorization: `Bearer ${this.#token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`answered ${res.status}`);
    return await res.json();
  }

  /**
   * The cluster's rules in front of the API: a write on a follower goes to the leader (once); a read waits for
   * this member to be linearizable unless `?stale=1`. Returns a response to send instead, or undefined to serve.
   */
  async route(request: Request, url: URL): Promise<Response | undefined> {
    if (LOCAL.has(url.pathname)) return undefined;
    // "Does the server have this module?" asks ahead of a deploy, which the leader checks: the leader answers it.
    const beforeDeploy = request.method === "HEAD" && /^\/api\/v1\/(modules|blobs)\//.test(url.pathname);
    const read = !beforeDeploy && (request.method === "GET" || request.method === "HEAD");
    if (read) {
      if (url.searchParams.get("stale") === "1") return undefined;
      try {
        await this.#log.barrier();
      } catch (err) {
        return (err instanceof OrcaError ? err : new OrcaError("unavailable", String(err))).toResponse();
      }
      return undefined;
    }
    if (this.#log.isLeader || AT_REPLICA.test(url.pathname)) return undefined;
    const leader = this.#log.leader;
    const address = leader !== undefined ? this.#log.addressOf(leader) : undefined;
    if (!address || request.headers.has(FORWARDED)) {
      return new OrcaError("unavailable", "no leader is known to take this write", {
        retryAfter: 1,
        hint: "the cluster is electing a leader, or this server is cut off from a majority; try again",
      }).toResponse();
    }
    return await forward(this.#upstream, request, url, address);
  }
}

/** Sends `request` on to the leader at `address` and its answer back, bodies streamed both ways. */
async function forward(
  upstream: UpstreamPool,
  request: Request,
  url: URL,
  address: string,
  who = "the leader",
): Promise<Response> {
  const headers = endToEnd(request.headers);
  headers.delete("host");
  headers.set(FORWARDED, "1");
  // A small body (a publish, a deploy's manifest) goes in one piece: streaming it costs more than it carries. A big
  // one (a module) streams.
  const length = Number(request.headers.get("content-length") ?? NaN);
  const small = request.body !== null && length <= BUFFERED_BYTES;
  try {
    // A server that hangs must not hold the request forever; a deploy compiles, so leave it time (for the head only:
    // `orca logs -f` streams on).
    const body = small ? await request.arrayBuffer() : request.body;
    return await upstream.requestTo(address, {
      method: request.method,
      target: `${url.pathname}${url.search}`,
      headers,
      body,
      timeoutMs: FORWARD_TIMEOUT_MS,
    });
  } catch (err) {
    // No Retry-After: the leader may have committed the write before it stopped answering.
    return new OrcaError("unavailable", `${who} at ${address} did not answer: ${(err as Error).message}`, {
      hint: "it may have taken effect: check (orca status, orca queue ls) before sending it again",
    }).toResponse();
  }
}

/** One node's figures of a canary's versions, as it sends them, checked (bad ones are dropped, not trusted). */
export function checkFigures(body: unknown): Record<string, NodeFigures> | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const out: Record<string, NodeFigures> = {};
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  for (const [version, f] of Object.entries(body).slice(0, 16)) {
    const { requests, errors, samples, p99Ms } = (typeof f === "object" && f !== null ? f : {}) as Record<
      string,
      unknown
    >;
    if (!/^[0-9]{1,15}$/.test(version) || !count(requests) || !count(errors) || !count(samples)) continue;
    if (p99Ms !== undefined && !(typeof p99Ms === "number" && p99Ms >= 0 && Number.isFinite(p99Ms))) continue;
    out[version] = {
      requests: requests as number,
      errors: Math.min(errors as number, requests as number),
      samples: samples as number,
      ...(p99Ms !== undefined && { p99Ms: p99Ms as number }),
    };
  }
  return out;
}
