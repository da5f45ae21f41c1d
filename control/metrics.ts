/**
 * A node's Prometheus metrics (prom-client, a registry of the node's own):
 * what its proxy answered (requests by service and status class, latency,
 * in flight, open connections), its workloads (instances, instantiations,
 * guest host kills, memory, CPU), the Wasm guest hosts, the trigger runs it
 * dispatched, the queues, and the Raft log. Counters move as things happen;
 * gauges are read from their sources when scraped. Labels are service names,
 * topics and status classes: never paths or hosts, which a client chooses.
 */

import { Counter, Gauge, Registry } from "prom-client";
import { ProxyMetrics } from "./proxy_metrics.ts";
import type { ResourceStats } from "../runtime/mod.ts";
import type { TopicInfo } from "./queue_store.ts";

/** Where the gauges are read from, at each scrape. */
export interface MetricsSources {
  /** The node's workloads with their live use (`ReplicaOps.allStats`). */
  workloads(): Promise<{ service: string; runtime: string; stats: ResourceStats }[]>;
  /** Requests the proxy took and has not answered whole. */
  inFlight(): number;
  /** The proxy's listening ports (HTTP, HTTPS), whose open connections are counted. */
  proxyPorts(): number[];
  /** Wasm guest host processes, and how many were killed or died. */
  wasmHosts(): { workers: number; restarts: number };
  /** The Raft log as this member sees it (absent on a worker, which is no member). */
  raft?(): { role: string; term: number; commit: number; applied: number; snapshot: number };
  /** Topics, their consumers' pending messages and dead letters (servers). */
  queues?(): TopicInfo[];
}

/** Latency buckets in seconds: an edge function's 1 ms to a slow container's 10 s. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How long a scrape waits for a runtime's figures (Docker's stats take a second). */
export const STATS_TIMEOUT_MS = 3000;

export class NodeMetrics {
  readonly registry = new Registry();
  readonly #proxy: ProxyMetrics;
  readonly #runs: Counter<"service" | "trigger" | "result">;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.#proxy = new ProxyMetrics(registers, {
      requests: [
        "orca_http_requests_total",
        "Requests the proxy answered, by service (- for none) and status class.",
      ],
      latency: [
        "orca_http_request_duration_seconds",
        "Time from a request's arrival to the end of its answer, by service.",
      ],
    }, BUCKETS);
    this.#runs = new Counter({
      name: "orca_trigger_runs_total",
      help: "Jobs this node dispatched (cron firings, queue and event deliveries), by result.",
      labelNames: ["service", "trigger", "result"],
      registers,
    });
    gauge(registers, "orca_http_requests_in_flight", "Requests taken and not yet answered whole.", [], (set) => {
      set({}, sources.inFlight());
    });
    gauge(registers, "orca_proxy_connections", "Open TCP connections to the proxy's ports.", ["port"], async (set) => {
      const counts = await connectionsTo(sources.proxyPorts());
      for (const [port, n] of counts) set({ port: String(port) }, n);
    });
    this.#workloadGauges(registers, sources);
    gauge(registers, "orca_wasm_guest_hosts", "Wasm guest host processes running.", [], (set) => {
      set({}, sources.wasmHosts().workers);
    });
    gauge(registers, "orca_wasm_guest_host_restarts", "Wasm guest hosts killed or lost since start.", [], (set) => {
      set({}, sources.wasmHosts().restarts);
    });
    if (sources.raft) this.#raftGauges(registers, sources.raft);
    if (sources.queues) this.#queueGauges(registers, sources.queues);
    gauge(registers, "process_resident_memory_bytes", "Resident memory of the orca process.", [], (set) => {
      set({}, Deno.memoryUsage().rss);
    });
    gauge(registers, "process_heap_used_bytes", "JavaScript heap in use.", [], (set) => {
      set({}, Deno.memoryUsage().heapUsed);
    });
  }

  /** The proxy answered `status` for `service` after `ms`. */
  answered(service: string, status: number, ms: number): void {
    this.#proxy.answered(service, status, ms);
  }

  /** A job of `service` ran for `trigger` (cron, queue, event). */
  ran(service: string, trigger: string, ok: boolean): void {
    this.#runs.inc({ service, trigger, result: ok ? "ok" : "failed" });
  }

  /** The text exposition format, and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  #workloadGauges(registers: Registry[], sources: MetricsSources): void {
    // One read of the runtimes per scrape, shared by the gauges below.
    let pending: Promise<Awaited<ReturnType<MetricsSources["workloads"]>>> | undefined;
    const read = () => pending ??= sources.workloads().finally(() => setTimeout(() => pending = undefined, 0));
    const per = (name: string, help: string, value: (s: ResourceStats) => number | undefined) =>
      gauge(registers, name, help, ["service", "runtime"], async (set) => {
        for (const w of await read()) {
          const v = value(w.stats);
          if (v !== undefined) set({ service: w.service, runtime: w.runtime }, v);
        }
      });
    per("orca_workload_instances", "Instances (Wasm) or containers running, by service.", (s) => s.instances);
    per("orca_workload_memory_bytes", "Memory in use, by service (Wasm: linear memory).", (s) => s.memoryBytes);
    per("orca_workload_cpu_percent", "CPU in use, by service (containers).", (s) => s.cpuPercent);
    per("orca_workload_requests", "Requests a workload served since it started.", (s) => s.requests);
    per("orca_workload_errors", "Requests a workload failed since it started.", (s) => s.errors);
    per("orca_wasm_instantiations", "Wasm instances made since the workload started.", (s) => s.instancesMade);
    per(
      "orca_wasm_deadline_kills",
      "Guest hosts killed while serving the workload (a guest past its deadline).",
      (s) => s.incidents,
    );
  }

  #raftGauges(registers: Registry[], raft: NonNullable<MetricsSources["raft"]>): void {
    const one = (name: string, help: string, value: (s: ReturnType<typeof raft>) => number) =>
      gauge(registers, name, help, [], (set) => set({}, value(raft())));
    one("orca_raft_term", "The Raft term this member is in.", (s) => s.term);
    one("orca_raft_commit_index", "The last log index this member knows committed.", (s) => s.commit);
    one("orca_raft_applied_index", "The last log index this member applied.", (s) => s.applied);
    one("orca_raft_apply_lag", "Entries committed and not yet applied here.", (s) => Math.max(0, s.commit - s.applied));
    one(
      "orca_raft_snapshot_index",
      "The index of the last snapshot (the log is compacted up to it).",
      (s) => s.snapshot,
    );
    one("orca_raft_leader", "1 on the leader, else 0.", (s) => s.role === "leader" ? 1 : 0);
  }

  #queueGauges(registers: Registry[], queues: () => TopicInfo[]): void {
    const labels = ["topic", "consumer"];
    gauge(registers, "orca_queue_pending_messages", "Messages a consumer has yet to handle.", labels, (set) => {
      for (const t of queues()) for (const c of t.consumers) set({ topic: t.topic, consumer: c.consumer }, c.pending);
    });
    gauge(registers, "orca_queue_dead_letters", "Messages that failed for good, per consumer.", labels, (set) => {
      for (const t of queues()) for (const c of t.consumers) set({ topic: t.topic, consumer: c.consumer }, c.dead);
    });
    gauge(registers, "orca_queue_retained_messages", "Messages a topic keeps.", ["topic"], (set) => {
      for (const t of queues()) set({ topic: t.topic }, t.retained);
    });
  }
}

type Setter = (labels: Record<string, string>, value: number) => void;

/** A gauge read from its source at each scrape (values of labels gone since the last scrape disappear). */
function gauge(
  registers: Registry[],
  name: string,
  help: string,
  labelNames: string[],
  read: (set: Setter) => void | Promise<void>,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers,
    async collect() {
      this.reset();
      await read((labels, value) => this.set(labels, value));
    },
  });
}

/** Established TCP connections whose local port is one of `ports` (Linux: /proc/net/tcp and tcp6). */
async function connectionsTo(ports: number[]): Promise<Map<number, number>> {
  const counts = new Map(ports.map((p) => [p, 0]));
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "01") continue; // 01: ESTABLISHED
      const port = parseInt(fields[1].slice(fields[1].lastIndexOf(":") + 1), 16);
      const n = counts.get(port);
      if (n !== undefined) counts.set(port, n + 1);
    }
  }
  return counts;
}
