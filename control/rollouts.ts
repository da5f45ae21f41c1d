/**
 * Canary rollouts as they run: the proxy sends each service's canary its
 * share of requests (an exact share, request by request), and counts the 5xx
 * answers and the latency of both versions. The leader judges every canary
 * each second: rolled back at once when enough requests prove it worse than
 * its limits, promoted when its analysis ends within them. The decision is a
 * command on the log (`rollout-end`), applied like any change.
 */

import type { Rollout } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { routesOf } from "../proxy/mod.ts";
import { keyOf } from "./deploy_request.ts";
import type { CommandLog } from "./plane_options.ts";
import { type NodeFigures, readRollouts, type RolloutRecord } from "./rollout_store.ts";

export type { NodeFigures };
import type { DeploySummary, Store, StoredService } from "./store.ts";

/** Canary requests before an early rollback on its error rate (fewer prove nothing). */
export const MIN_REQUESTS = 20;
/** Samples before an early rollback on p99 latency. */
const MIN_LATENCY_SAMPLES = 100;
/** Latencies kept per version (the newest). */
const MAX_SAMPLES = 10_000;

/** What the proxy measured of one version during a canary. */
export interface VersionFigures {
  version: number;
  requests: number;
  errors: number;
  errorRate: number;
  p99Ms?: number;
}

/** `orca rollout status`: a canary under way or ended, with what was measured of both versions. */
export interface RolloutStatus {
  service: string;
  state: RolloutRecord["state"];
  percent: number;
  startedAt: number;
  endsAt: number;
  endedAt?: number;
  reason?: string;
  limits: { maxErrorRate: number; maxP99Ms?: number };
  canary: VersionFigures;
  stable: VersionFigures;
}

class Figures {
  requests = 0;
  errors = 0;
  readonly #latencies: number[] = [];
  #next = 0;

  record(status: number, ms: number): void {
    this.requests++;
    if (status >= 500) this.errors++;
    if (this.#latencies.length < MAX_SAMPLES) this.#latencies.push(ms);
    else this.#latencies[this.#next++ % MAX_SAMPLES] = ms;
  }

  get samples(): number {
    return this.#latencies.length;
  }

  p99(): number | undefined {
    if (this.#latencies.length === 0) return undefined;
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
  }

  /** As a node tells them; `latency` false leaves the p99 out (it sorts every sample). */
  told(latency = true): NodeFigures {
    const p99 = latency ? this.p99() : undefined;
    return {
      requests: this.requests,
      errors: this.errors,
      samples: this.samples,
      ...(p99 !== undefined && { p99Ms: p99 }),
    };
  }
}

/** Two nodes' figures of one version as one: counts summed, the higher p99 (conservative). */
function addFigures(a: NodeFigures, b: NodeFigures | undefined): NodeFigures {
  if (!b) return a;
  const p99s = [a.p99Ms, b.p99Ms].filter((p): p is number => p !== undefined);
  return {
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    samples: a.samples + b.samples,
    ...(p99s.length > 0 && { p99Ms: Math.max(...p99s) }),
  };
}

const NONE: NodeFigures = { requests: 0, errors: 0, samples: 0 };

/** The lower end of the 95% Wilson interval of a rate of `k` in `n`: the rate is above it, very likely. */
export function wilsonLower(k: number, n: number): number {
  if (n === 0) return 0;
  const z = 1.96, p = k / n;
  const centre = p + z * z / (2 * n);
  const spread = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return Math.max(0, (centre - spread) / (1 + z * z / n));
}

/**
 * What to do with a canary now: roll back when its requests already prove it worse than a limit, or, once its
 * analysis is over, unless it is within them; else wait.
 */
export function judge(
  rollout: Rollout,
  canary: { requests: number; errors: number; p99Ms?: number; samples: number },
  elapsedMs: number,
): { outcome: "promoted" | "rolled_back"; reason: string } | undefined {
  const { requests: n, errors: e } = canary;
  const rate = n === 0 ? 0 : e / n;
  const figures = `${e} of ${n} requests failed (${(rate * 100).toFixed(1)}%)`;
  if (n >= MIN_REQUESTS && wilsonLower(e, n) > rollout.max_error_rate) {
    return { outcome: "rolled_back", reason: `${figures}, over max_error_rate ${rollout.max_error_rate}` };
  }
  const slow = rollout.max_p99_ms !== undefined && canary.p99Ms !== undefined && canary.p99Ms > rollout.max_p99_ms;
  const latency = `p99 ${canary.p99Ms} ms, over max_p99_ms ${rollout.max_p99_ms}`;
  if (slow && canary.samples >= MIN_LATENCY_SAMPLES) return { outcome: "rolled_back", reason: latency };
  if (elapsedMs < rollout.analysis_secs * 1000) return undefined;
  if (rate > rollout.max_error_rate) {
    return { outcome: "rolled_back", reason: `${figures}, over max_error_rate ${rollout.max_error_rate}` };
  }
  if (slow) return { outcome: "rolled_back", reason: latency };
  if (n === 0) return { outcome: "promoted", reason: "its analysis ended, and no request reached it" };
  const p99 = canary.p99Ms === undefined ? "" : `, p99 ${canary.p99Ms} ms`;
  return { outcome: "promoted", reason: `its analysis ended within its limits: ${figures}${p99}` };
}

/**
 * Which of a deploy's new versions start as canaries: those of `strategy = "canary"` that replace a running version
 * (a new service, or one that failed to start, has nothing to be compared with). They move from `summary.updated` to
 * `summary.canary`. Refused: a change to a service whose canary is under way, and a canary that changes routes.
 */
export function splitCanaries(
  changed: StoredService[],
  summary: DeploySummary,
  deployed: ReadonlyMap<string, StoredService>,
  failed: (key: string) => boolean,
  underWay: (key: string) => RolloutRecord | undefined,
): { direct: StoredService[]; canaries: StoredService[] } {
  for (const key of [...changed.map((c) => keyOf(c.spec)), ...summary.removed]) {
    const rollout = underWay(key);
    if (!rollout) continue;
    const ends = new Date(rollout.startedAt + rollout.spec.rollout!.analysis_secs * 1000).toISOString();
    throw new OrcaError("conflict", `a canary of ${key} (v${rollout.version}) is under way until ${ends}`, {
      hint: `wait for its outcome: orca rollout status ${key}`,
    });
  }
  const direct: StoredService[] = [], canaries: StoredService[] = [];
  for (const c of changed) {
    const key = keyOf(c.spec);
    const current = deployed.get(key);
    if (c.spec.rollout?.strategy !== "canary" || !current || failed(key)) {
      direct.push(c);
      continue;
    }
    if (JSON.stringify(routesOf(current.spec)) !== JSON.stringify(routesOf(c.spec))) {
      throw new OrcaError("config", `service ${key}: a canary keeps the routes of the version it runs beside`, {
        hint: 'change routes (triggers, domain) with [service.rollout] strategy = "all"',
      });
    }
    canaries.push(c);
  }
  const started = new Set(canaries.map((c) => keyOf(c.spec)));
  if (started.size > 0) {
    summary.updated = summary.updated.filter((k) => !started.has(k));
    summary.canary = [...started];
  }
  return { direct, canaries };
}

export interface RolloutsOptions {
  store: Store;
  commands: CommandLog;
  /** Whether this server decides (the leader). */
  leads: () => boolean;
  now: () => number;
  log: (line: string) => void;
  emit: (name: string, data: Record<string, unknown>) => void;
  /** A line for the service's own logs. */
  note: (service: string, text: string) => void;
  /** What the other nodes that serve `service` measured of its versions (a cluster's leader asks them). */
  remote?: (service: string) => Promise<(Record<string, NodeFigures> | undefined)[]>;
}

export class Rollouts {
  readonly #opts: RolloutsOptions;
  /** Canaries under way, by service (read from the store once per change). */
  #active?: Map<string, RolloutRecord>;
  readonly #figures = new Map<string, Figures>();
  readonly #turns = new Map<string, number>();
  readonly #deciding = new Set<string>();
  /** The other nodes' figures, summed, by `service@version` (asked each tick while a canary runs). */
  readonly #remote = new Map<string, NodeFigures>();
  readonly #gathering = new Set<string>();

  constructor(opts: RolloutsOptions) {
    this.#opts = opts;
  }

  /** The log applied a change that may start or end a canary: figures of versions no rollout names go. */
  changed(): void {
    this.#active = undefined;
    const rows = readRollouts((text) => this.#opts.store.sql(text));
    const named = new Set(rows.flatMap((r) => [`${r.service}@${r.version}`, `${r.service}@${r.from}`]));
    for (const key of this.#figures.keys()) if (!named.has(key)) this.#figures.delete(key);
    for (const key of this.#remote.keys()) if (!named.has(key)) this.#remote.delete(key);
    for (const service of this.#turns.keys()) if (!this.active(service)) this.#turns.delete(service);
  }

  /** The canary of `service` under way, if any. */
  active(service: string): RolloutRecord | undefined {
    return this.#analysing().get(service);
  }

  /** The canaries under way, by service. */
  #analysing(): Map<string, RolloutRecord> {
    return this.#active ??= new Map(
      readRollouts((text) => this.#opts.store.sql(text), "analysing").map((r) => [r.service, r]),
    );
  }

  /** Whether the next request of `service` goes to its canary: exactly `canary_percent` of them do. */
  toCanary(rollout: RolloutRecord): boolean {
    const percent = rollout.spec.rollout?.canary_percent ?? 10;
    const i = this.#turns.get(rollout.service) ?? 0;
    this.#turns.set(rollout.service, i + 1);
    return Math.floor((i + 1) * percent / 100) > Math.floor(i * percent / 100);
  }

  /**
   * Counts an answer of `service` at `version` (while a canary of it runs). A canary's failure is judged at once:
   * its error rate may prove it bad before the next tick.
   */
  record(service: string, version: number, status: number, ms: number): void {
    const key = `${service}@${version}`;
    let f = this.#figures.get(key);
    if (!f) this.#figures.set(key, f = new Figures());
    f.record(status, ms);
    const rollout = status >= 500 ? this.active(service) : undefined;
    if (rollout?.version === version && this.#opts.leads() && !this.#deciding.has(service)) {
      const limit = rollout.spec.rollout!.max_error_rate;
      const all = this.#figuresOf(service, version, false);
      if (all.requests >= MIN_REQUESTS && wilsonLower(all.errors, all.requests) > limit) this.#judge(rollout);
    }
  }

  /** The leader judges every canary under way; a decision is committed once. */
  tick(): void {
    if (!this.#opts.leads()) return;
    for (const rollout of this.#analysing().values()) {
      if (this.#deciding.has(rollout.service)) continue;
      if (this.#opts.remote) this.#gather(rollout);
      else this.#judge(rollout);
    }
  }

  /** Asks the other nodes for their figures, then judges with them. */
  async #gather(rollout: RolloutRecord): Promise<void> {
    const { service } = rollout;
    if (this.#gathering.has(service)) return;
    this.#gathering.add(service);
    try {
      const answers = await this.#opts.remote!(service);
      for (const version of [rollout.version, rollout.from]) {
        const sum = answers.reduce((sum: NodeFigures, a) => addFigures(sum, a?.[String(version)]), NONE);
        this.#remote.set(`${service}@${version}`, sum);
      }
    } finally {
      this.#gathering.delete(service);
    }
    if (!this.#deciding.has(service)) this.#judge(rollout);
  }

  /** This node's figures of `service` at `version` with the other nodes' last told (p99: the highest of them). */
  #figuresOf(service: string, version: number, latency = true): NodeFigures {
    const key = `${service}@${version}`;
    return addFigures(this.#figures.get(key)?.told(latency) ?? NONE, this.#remote.get(key));
  }

  #judge(rollout: RolloutRecord): void {
    const canary = this.#figuresOf(rollout.service, rollout.version);
    const verdict = judge(rollout.spec.rollout!, canary, this.#opts.now() - rollout.startedAt);
    if (verdict) this.#decide(rollout, verdict.outcome, verdict.reason);
  }

  /** What this node alone measured of `service`'s canary versions (what a leader asks of it). */
  here(service: string): Record<string, NodeFigures> {
    const out: Record<string, NodeFigures> = {};
    for (const [key, f] of this.#figures) {
      if (key.startsWith(`${service}@`)) out[key.slice(service.length + 1)] = f.told();
    }
    return out;
  }

  async #decide(rollout: RolloutRecord, outcome: "promoted" | "rolled_back", reason: string): Promise<void> {
    const { service, version } = rollout;
    this.#deciding.add(service);
    try {
      const command = { type: "rollout-end" as const, service, version, outcome, reason, at: this.#opts.now() };
      const deploy = await this.#opts.commands.propose(command, { serial: true });
      if (deploy === null) return;
      const what = outcome === "promoted" ? "promoted" : "rolled back";
      this.#opts.log(`deploy ${deploy}: canary v${version} of ${service} ${what}: ${reason}`);
      this.#opts.note(service, `canary v${version} ${what}: ${reason}`);
      const status = this.status(service);
      this.#opts.emit(`orca.rollout.${outcome}`, {
        service,
        version,
        from: rollout.from,
        deploy,
        reason,
        ...(status && { canary: status.canary, stable: status.stable }),
      });
    } catch (err) {
      this.#opts.log(`canary of ${service} not ended (tried again): ${(err as Error).message ?? err}`);
    } finally {
      this.#deciding.delete(service);
    }
  }

  /** The canary of `service` under way, or how its last one ended, with what this server measured. */
  status(service: string): RolloutStatus | undefined {
    const r = readRollouts((text) => this.#opts.store.sql(text)).find((r) => r.service === service);
    if (!r) return undefined;
    const rollout = r.spec.rollout!;
    const of = (version: number): VersionFigures => {
      const f = this.#figuresOf(service, version);
      return {
        version,
        requests: f.requests,
        errors: f.errors,
        errorRate: f.requests === 0 ? 0 : f.errors / f.requests,
        ...(f.p99Ms !== undefined && { p99Ms: Math.round(f.p99Ms * 10) / 10 }),
      };
    };
    return {
      service,
      state: r.state,
      percent: rollout.canary_percent,
      startedAt: r.startedAt,
      endsAt: r.startedAt + rollout.analysis_secs * 1000,
      ...(r.endedAt !== undefined && { endedAt: r.endedAt }),
      ...(r.reason !== undefined && { reason: r.reason }),
      limits: { maxErrorRate: rollout.max_error_rate, ...(rollout.max_p99_ms && { maxP99Ms: rollout.max_p99_ms }) },
      canary: of(r.version),
      stable: of(r.from),
    };
  }
}
