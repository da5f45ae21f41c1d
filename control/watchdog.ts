/**
 * The watchdog keeps what runs here as the applied state says it should run.
 * Every cycle it looks at each replica: one that died is taken out of the
 * routes at once and started again from its spec, with a backoff per replica
 * (1 s doubling to 5 min); more than 5 restarts in 10 minutes is a crash loop,
 * shown in `orca status` with the last exit code and lines. Readiness takes a
 * failing replica out of the routes and puts it back when it passes; liveness
 * restarts it after `failure_threshold` failures. Orphaned containers are
 * removed. Each action is logged and published as an event.
 */

import { type Probe, readinessOf, type ServiceSpec } from "../config/mod.ts";
import type { Healing, ReplicaHealth, WorkloadHandle } from "../runtime/mod.ts";
import { retryDelay, type RetryPolicy } from "../triggers/mod.ts";
import { ProbeLoops } from "./probes.ts";
import type { Workloads } from "./workloads.ts";

/** Restarts back off from 1 s, doubling up to 5 min (a replica's, and a service's that failed to start). */
const BACKOFF: RetryPolicy = { maxAttempts: Infinity, baseMs: 1000, maxMs: 5 * 60_000 };
/** More restarts than this within CRASHLOOP_WINDOW_MS is a crash loop. */
const CRASHLOOP_RESTARTS = 5;
const CRASHLOOP_WINDOW_MS = 10 * 60_000;
/** A replica that stays up this long starts its backoff over. */
const STABLE_MS = 10 * 60_000;
/** Lines of a crashed replica's output kept for `orca status`. */
const TAIL_LINES = 10;
/** Watchdog actions kept per service for `orca logs`. */
const HISTORY_LINES = 200;

export interface WatchdogOptions {
  workloads: Workloads;
  /** How often every replica is looked at (default 30 s). */
  intervalMs?: number;
  log: (line: string) => void;
  /** Publishes an event (`orca.instance.restarted`, `orca.route.removed`, ...). */
  emit: (name: string, data: Record<string, unknown>) => void;
  /** Starts again a service that failed to start here; undefined once it runs, else why not. */
  startAgain?: (service: string) => Promise<string | undefined>;
  now?: () => number;
}

/** What the watchdog knows of one replica. */
interface Care {
  service: string;
  handle: WorkloadHandle;
  replica: number;
  /** Whether the watchdog lets it have requests. */
  routed: boolean;
  /** Failing readiness (routed again once it passes). */
  unready: boolean;
  restarts: number[];
  /** Restarts since it last stayed up: what its backoff grows with. */
  attempts: number;
  /** The earliest time of its next restart. */
  notBefore: number;
  restarting?: Promise<void>;
  /** A timer set to restart it when its backoff ends. */
  timer?: ReturnType<typeof setTimeout>;
  /** When it was last seen come up. */
  upSince?: number;
  last?: { at: number; reason: string; exitCode?: number; lines: string[] };
}

/** One replica as `orca status` shows it. */
export interface ReplicaView {
  replica: number;
  state: "running" | "unready" | "restarting" | "down" | "crashloop";
  /** Restarts in the last 10 minutes. */
  restarts: number;
  /** When the next restart may happen (a replica backing off). */
  nextRestartAt?: number;
  /** Why it was last restarted, its exit code, and its last lines then. */
  last?: { at: number; reason: string; exitCode?: number; lines: string[] };
}

export class Watchdog {
  readonly #opts: WatchdogOptions;
  readonly #now: () => number;
  /** By workload id, then replica. */
  readonly #cares = new Map<string, Map<number, Care>>();
  readonly #history = new Map<string, { at: number; text: string }[]>();
  /** Services that failed to start here, tried again with the same backoff as a replica. */
  readonly #failed = new Map<string, { attempts: number; notBefore: number; trying: boolean }>();
  readonly #probes: ProbeLoops;
  #cycle?: ReturnType<typeof setTimeout>;
  #checking?: Promise<void>;
  /** A look was asked for while one was under way: another follows it. */
  #again = false;
  #stopped = false;
  #unwatch = () => {};

  constructor(opts: WatchdogOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#probes = new ProbeLoops({
      healing: (handle) => this.#healing(handle),
      replicas: (handle) => this.#caresOf(handle).filter((c) => !c.restarting && c.upSince !== undefined),
      onReadiness: (care, ok, why) => this.#readiness(care as Care, ok, why),
      onLiveness: (care, why) => this.#restart(care as Care, `liveness: ${why}`),
    });
  }

  /** Starts the cycle; a replica that ends is looked at as it ends, where its runtime tells (containers). */
  start(): void {
    this.#stopped = false;
    this.#unwatch = this.#opts.workloads.watchDeaths(() => this.check());
    const tick = () => {
      this.#cycle = setTimeout(async () => {
        await this.check();
        if (!this.#stopped) tick();
      }, this.#opts.intervalMs ?? 30_000);
    };
    tick();
  }

  stop(): void {
    this.#stopped = true;
    this.#unwatch();
    clearTimeout(this.#cycle);
    this.#probes.stop();
    for (const cares of this.#cares.values()) for (const c of cares.values()) clearTimeout(c.timer);
  }

  /** One look now (one at a time: asked for during one, another follows it). */
  check(): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = this.#check().finally(() => {
      this.#checking = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.check();
      }
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    const { workloads } = this.#opts;
    const seen = new Set<Care>();
    for (const service of this.#failed.keys()) {
      if (workloads.active.get(service)?.failure === undefined) this.#failed.delete(service);
    }
    await Promise.all([...workloads.active].map(async ([service, a]) => {
      if (!a.handle) return this.#startAgain(service, a.failure);
      const handle = a.handle;
      let health: ReplicaHealth[];
      try {
        health = await (this.#healing(handle)?.replicas(handle) ?? Promise.resolve([]));
      } catch (err) {
        this.#opts.log(`watchdog: ${service}: cannot look at its replicas: ${(err as Error).message}`);
        for (const c of this.#caresOf(handle)) seen.add(c);
        return;
      }
      let cares = this.#cares.get(handle.id);
      if (!cares) this.#cares.set(handle.id, cares = new Map());
      for (const h of health) {
        let care = cares.get(h.replica);
        if (!care) cares.set(h.replica, care = this.#care(service, handle, h.replica));
        seen.add(care);
        this.#look(care, h);
      }
      this.#probes.ensure(handle, probesOf(a.stored.spec));
    }));
    for (const [id, cares] of this.#cares) {
      for (const [replica, c] of cares) {
        if (seen.has(c) || c.restarting) continue;
        clearTimeout(c.timer);
        cares.delete(replica);
      }
      if (cares.size === 0) this.#cares.delete(id);
    }
    this.#probes.keep(new Set([...workloads.active.values()].flatMap((a) => a.handle ? [a.handle.id] : [])));
    for (const service of this.#history.keys()) {
      if (!workloads.active.has(service.replace(/#canary$/, ""))) this.#history.delete(service);
    }
    await workloads.removeOrphans();
  }

  /** Tries a service that failed to start here again, once its backoff allows. */
  #startAgain(service: string, failure: string | undefined): void {
    if (failure === undefined || !this.#opts.startAgain) return;
    const now = this.#now();
    let f = this.#failed.get(service);
    if (!f) this.#failed.set(service, f = { attempts: 0, notBefore: now, trying: false });
    if (f.trying || now < f.notBefore) return;
    const state = f;
    state.trying = true;
    state.notBefore = now + retryDelay(++state.attempts, BACKOFF);
    this.#opts.startAgain(service).then((still) => {
      if (still !== undefined) return;
      this.#failed.delete(service);
      this.#opts.log(`watchdog: ${service}: started again (it had failed: ${failure})`);
      this.note(service, `watchdog: started again (it had failed to start: ${failure})`);
      this.#opts.emit("orca.instance.restarted", { service, reason: `it had failed to start: ${failure}` });
    }, () => {}).finally(() => state.trying = false);
  }

  #care(service: string, handle: WorkloadHandle, replica: number): Care {
    const now = this.#now();
    return {
      service,
      handle,
      replica,
      routed: true,
      unready: false,
      restarts: [],
      attempts: 0,
      notBefore: now,
      upSince: now,
    };
  }

  /** Acts on what a look at one replica found. */
  #look(care: Care, h: ReplicaHealth): void {
    if (care.restarting) return;
    const now = this.#now();
    if (h.alive) {
      care.upSince ??= now;
      // A request that found it closed took it out of the runtime's rotation; alive and ready, it goes back.
      if (care.routed) this.#healing(care.handle)?.route?.(care.handle, care.replica, true);
      if (now - care.upSince >= STABLE_MS) care.attempts = 0;
      return;
    }
    care.upSince = undefined;
    if (care.routed) this.#unroute(care, h.detail ?? "not running");
    this.#restart(care, h.detail ?? "not running", h.exitCode);
  }

  /** Restarts a replica now, or when its backoff ends. */
  #restart(care: Care, reason: string, exitCode?: number): void {
    if (care.restarting || this.#stopped) return;
    const wait = care.notBefore - this.#now();
    if (wait > 0) {
      if (!care.timer) {
        care.timer = setTimeout(() => {
          care.timer = undefined;
          this.#restart(care, reason, exitCode);
        }, wait);
      }
      return;
    }
    const healing = this.#healing(care.handle);
    if (!healing) return;
    if (care.routed) this.#unroute(care, reason);
    care.restarting = (async () => {
      const now = this.#now();
      // Its last lines are read as the restart begins (asked first, they are the ones it wrote before it ended).
      const tail = healing.tail(care.handle, care.replica, TAIL_LINES).catch(() => []);
      care.last = { at: now, reason, ...(exitCode !== undefined && { exitCode }), lines: [] };
      care.restarts = [...care.restarts.filter((t) => now - t < CRASHLOOP_WINDOW_MS), now];
      care.notBefore = now + retryDelay(++care.attempts, BACKOFF);
      const loop = care.restarts.length > CRASHLOOP_RESTARTS ? " (crash loop)" : "";
      this.#say(care, `replica ${care.replica} restarting${loop}: ${reason}`);
      try {
        await Promise.all([healing.restart(care.handle, care.replica), tail.then((lines) => care.last!.lines = lines)]);
      } catch (err) {
        this.#say(care, `replica ${care.replica} did not restart: ${(err as Error).message}`);
        return;
      }
      care.upSince = this.#now();
      care.unready = false;
      care.routed = true;
      healing.route?.(care.handle, care.replica, true);
      this.#say(care, `replica ${care.replica} restarted`);
      this.#opts.emit("orca.instance.restarted", {
        service: care.service,
        replica: care.replica,
        reason,
        ...(exitCode !== undefined && { exitCode }),
        restarts: care.restarts.length,
      });
    })().finally(() => care.restarting = undefined);
  }

  #readiness(care: Care, ok: boolean, why: string | undefined): void {
    if (ok && care.unready) {
      care.unready = false;
      care.routed = true;
      this.#healing(care.handle)?.route?.(care.handle, care.replica, true);
      this.#say(care, `replica ${care.replica} passes readiness again: back in the routes`);
    } else if (!ok && !care.unready) {
      care.unready = true;
      this.#unroute(care, `readiness: ${why}`);
    }
  }

  #unroute(care: Care, reason: string): void {
    care.routed = false;
    this.#healing(care.handle)?.route?.(care.handle, care.replica, false);
    this.#say(care, `replica ${care.replica} taken out of the routes: ${reason}`);
    this.#opts.emit("orca.route.removed", { service: care.service, replica: care.replica, reason });
  }

  /** Logs a watchdog action, in the server's log and in the service's. */
  #say(care: Care, text: string): void {
    this.#opts.log(`watchdog: ${care.service}: ${text}`);
    this.note(care.service, `watchdog: ${text}`);
  }

  /** A line for `service`'s own logs (`orca logs` shows it among what its replicas wrote). */
  note(service: string, text: string): void {
    const lines = this.#history.get(service) ?? [];
    lines.push({ at: this.#now(), text });
    if (lines.length > HISTORY_LINES) lines.shift();
    this.#history.set(service, lines);
  }

  /** Whether `handle` has a replica the watchdog lets have requests (one it has not looked at yet does). */
  routable(handle: WorkloadHandle): boolean {
    const cares = this.#cares.get(handle.id);
    if (!cares || cares.size === 0) return true;
    for (const c of cares.values()) if (c.routed) return true;
    return false;
  }

  /** The watchdog's actions for `service`, oldest first. */
  history(service: string): readonly { at: number; text: string }[] {
    return this.#history.get(service) ?? [];
  }

  /** The replicas of `handle` as `orca status` shows them. */
  view(handle: WorkloadHandle): ReplicaView[] {
    const now = this.#now();
    return this.#caresOf(handle).map((c): ReplicaView => {
      const restarts = c.restarts.filter((t) => now - t < CRASHLOOP_WINDOW_MS).length;
      const state: ReplicaView["state"] = restarts > CRASHLOOP_RESTARTS
        ? "crashloop"
        : c.restarting
        ? "restarting"
        : c.upSince === undefined
        ? "down"
        : c.unready
        ? "unready"
        : "running";
      return {
        replica: c.replica,
        state,
        restarts,
        ...(c.notBefore > now && { nextRestartAt: c.notBefore }),
        ...(c.last && { last: c.last }),
      };
    }).sort((a, b) => a.replica - b.replica);
  }

  #caresOf(handle: WorkloadHandle): Care[] {
    return [...this.#cares.get(handle.id)?.values() ?? []];
  }

  #healing(handle: WorkloadHandle): Healing | undefined {
    const runtime = this.#opts.workloads.runtime(handle) as Partial<Healing>;
    return runtime.replicas && runtime.restart ? runtime as Healing : undefined;
  }
}

/** What a workload's first replica in a crash loop says of it (restarts, last exit code, reason); undefined: none. */
export function crashLoopOf(replicas: readonly ReplicaView[]): string | undefined {
  const r = replicas.find((r) => r.state === "crashloop");
  if (!r) return undefined;
  const code = r.last?.exitCode !== undefined ? `, last exit code ${r.last.exitCode}` : "";
  return `replica ${r.replica} restarted ${r.restarts} times in 10 minutes${code}: ${
    r.last?.reason ?? "it keeps ending"
  }`;
}

/** A service's readiness and liveness probes. */
function probesOf(spec: ServiceSpec): { readiness?: Probe; liveness?: Probe } {
  const readiness = readinessOf(spec);
  return { ...(readiness && { readiness }), ...(spec.liveness && { liveness: spec.liveness }) };
}
