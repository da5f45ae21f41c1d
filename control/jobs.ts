/**
 * Wires the non-HTTP triggers to running services: cron jobs, queue
 * consumers and event subscribers, all run as WASI command jobs on the Wasm
 * runtime. The control plane calls `apply` whenever the set of services
 * changes.
 */

import { parseTrigger, type ServiceSpec, topicError } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { type JobInput, type JobResult, type JobRunning, toBase64, type WorkloadHandle } from "../runtime/mod.ts";
import { type Clock, systemClock } from "../triggers/clock.ts";
import { type CronJob, CronScheduler } from "../triggers/cron_scheduler.ts";
import { EventBus, type EventSubscription } from "../triggers/events.ts";
import { defaultRetryPolicy, type RetryPolicy } from "../triggers/mod.ts";
import { QueueConsumers, type Subscription } from "../triggers/queue.ts";
import type { ControlCommand } from "./machine.ts";
import { PublishBatcher, type Turns } from "./publish_batch.ts";
import { QueueStore } from "./queue_store.ts";
import { RunStore } from "./run_store.ts";
import type { Store } from "./store.ts";

export interface RunningService {
  spec: ServiceSpec;
  /** Its workload on this server; absent when it runs on other nodes only (`remote` runs its jobs there). */
  handle?: WorkloadHandle;
}

export interface JobTriggersOptions {
  store: Store;
  /** Job runners by runtime kind: Wasm commands, one-off containers. */
  runtimes: Partial<Record<WorkloadHandle["runtime"], JobRunning>>;
  clock?: Clock;
  policy?: RetryPolicy;
  log?: (line: string) => void;
  /** Whether this server runs cron jobs and delivers messages now (the cluster's leader); default: always. */
  leads?: () => boolean;
  /**
   * Where queue changes are committed (publishes, acks, retries, dead letters): the log. Publishes gathered
   * together go in just before it writes (`beforeWrite`, `wake`: raft/driver.ts).
   */
  commands: { propose(command: ControlCommand): Promise<unknown> } & Turns;
  /** Runs a job of a service with no workload here on a node that runs it (the scheduler placed it there). */
  remote?: (service: string, input: JobInput) => Promise<JobResult>;
}

const encoder = new TextEncoder();

export class JobTriggers {
  readonly runs: RunStore;
  readonly queues: QueueStore;
  readonly #cron: CronScheduler;
  readonly #consumers: QueueConsumers;
  readonly #events: EventBus;
  readonly #runtimes: Partial<Record<WorkloadHandle["runtime"], JobRunning>>;
  readonly #handles = new Map<string, WorkloadHandle>();
  readonly #propose: (command: ControlCommand) => Promise<unknown>;
  readonly #now: () => number;
  readonly #publishes: PublishBatcher;
  readonly #remote?: (service: string, input: JobInput) => Promise<JobResult>;
  /** Told of each job this server dispatched, as it ends (the node's metrics). */
  onRun?: (service: string, trigger: string, ok: boolean) => void;

  constructor(opts: JobTriggersOptions) {
    const clock = opts.clock ?? systemClock;
    this.#runtimes = opts.runtimes;
    this.#remote = opts.remote;
    this.runs = new RunStore(opts.store);
    this.queues = new QueueStore(opts.store);
    const commands = opts.commands;
    this.#propose = (command) => commands.propose(command);
    this.#now = () => clock.now();
    this.#publishes = new PublishBatcher((topic, bodies) => this.#append(topic, bodies, {}), commands);
    const runs = this.runs;
    this.#cron = new CronScheduler({
      clock,
      // Reads from the state the log applied; claims and runs are commands on the log.
      backend: {
        lastScheduled: (service, trigger) => runs.lastScheduled(service, trigger),
        claim: async (service, trigger, at) =>
          await this.#propose({ type: "cron-claim", service, trigger, at }) === true,
        recordRun: async (run) => void await this.#propose({ type: "cron-run", run }),
      },
      log: opts.log,
      ...(opts.leads && { leads: opts.leads }),
      run: (job, scheduledAt) =>
        this.#runJob(
          job.service,
          {
            ORCA_TRIGGER: "cron",
            ORCA_SCHEDULE: job.trigger.slice("cron:".length),
            ORCA_SCHEDULED_AT: new Date(scheduledAt).toISOString(),
          },
          encoder.encode(new Date(scheduledAt).toISOString()),
          "cron",
        ),
    });
    const queues = this.queues;
    this.#consumers = new QueueConsumers({
      // Reads from the state the log applied; every change is a command on the log.
      backend: {
        next: (topic, consumer, after) => queues.next(topic, consumer, after),
        ack: async (topic, consumer, id) => void await this.#propose({ type: "queue-ack", topic, consumer, id }),
        retryLater: async (topic, consumer, _id, attempts, notBefore, error) =>
          void await this.#propose({ type: "queue-retry", topic, consumer, attempts, notBefore, error }),
        deadLetter: async (topic, consumer, message, attempts, error) =>
          void await this.#propose({
            type: "queue-dead",
            topic,
            consumer,
            messageId: message.id,
            attempts,
            error,
            at: this.#now(),
          }),
      },
      ...(opts.leads && { leads: opts.leads }),
      clock,
      policy: opts.policy ?? defaultRetryPolicy,
      log: opts.log,
      deliver: async (sub, message, attempt) => {
        const env: Record<string, string> = message.meta.event
          ? { ORCA_TRIGGER: "event", ORCA_EVENT: message.meta.event, ORCA_EVENT_ID: String(message.id) }
          : { ORCA_TRIGGER: "queue", ORCA_TOPIC: sub.topic, ORCA_MESSAGE_ID: String(message.id) };
        env.ORCA_ATTEMPT = String(attempt);
        const r = await this.#runJob(sub.consumer, env, message.body, message.meta.event ?? sub.topic);
        return {
          ok: r.exitCode === 0 && !r.error,
          error: r.error ?? `exit code ${r.exitCode}: ${r.outputTail.slice(-300)}`,
        };
      },
    });
    this.#events = new EventBus(
      (topic, bodies, meta) => this.#append(topic, bodies, meta),
      (topic) => this.#consumers.notify(topic),
    );
  }

  /**
   * Makes cron jobs, queue consumers and event subscribers match `services`. What removed services leave behind
   * (cursors, runs) the log's deploy dropped (machine.ts).
   */
  apply(services: RunningService[]): void {
    this.#handles.clear();
    const jobs: CronJob[] = [];
    const subs: Subscription[] = [];
    const eventSubs: EventSubscription[] = [];
    for (const { spec, handle } of services) {
      const service = `${spec.project}/${spec.name}`;
      if (handle) this.#handles.set(service, handle);
      for (const trigger of spec.triggers) {
        const t = parseTrigger(trigger);
        if ("error" in t) continue;
        if (t.type === "cron") jobs.push({ service, trigger, schedule: t.schedule });
        if (t.type === "queue") subs.push({ topic: t.topic, consumer: service });
        if (t.type === "event") eventSubs.push({ consumer: service, pattern: t.pattern });
      }
    }
    this.#cron.setJobs(jobs);
    this.#events.setSubscriptions(eventSubs);
    // The cursors come with the deploy the log applied (machine.ts); these loops deliver from them.
    this.#consumers.setSubscriptions([...subs, ...this.#events.inboxSubscriptions()]);
  }

  /** This server just became the leader: consumers look for messages at once, cron runs what nobody ran. */
  wake(): void {
    this.#consumers.notify();
    this.#cron.catchUp();
  }

  /** Publishes messages to a queue topic; resolves with their ids once committed. */
  async publish(topic: string, bodies: Uint8Array[]): Promise<number[]> {
    const error = topicError(topic);
    if (error) throw new OrcaError("invalid", error, { hint: "letters, digits, . _ -, at most 200 characters" });
    const ids = await this.#publishes.publish(topic, bodies);
    this.#consumers.notify(topic);
    return ids;
  }

  /** Publishes an event; resolves with the services it was delivered to. */
  async emit(name: string, data: Uint8Array | Record<string, unknown>): Promise<string[]> {
    try {
      return await this.#events.publish(
        name,
        data instanceof Uint8Array ? data : encoder.encode(JSON.stringify(data)),
      );
    } catch (err) {
      if (err instanceof RangeError) {
        throw new OrcaError("invalid", err.message, {
          hint: "dotted words of letters, digits, _ and -, e.g. orders.created",
        });
      }
      throw err;
    }
  }

  async #append(topic: string, bodies: Uint8Array[], meta: Record<string, string>): Promise<number[]> {
    const command = { type: "queue-publish" as const, topic, bodies: bodies.map(toBase64), meta, at: this.#now() };
    return await this.#propose(command) as number[];
  }

  nextRuns(service: string): { trigger: string; at?: number }[] {
    return this.#cron.nextRuns(service);
  }

  async stop(): Promise<void> {
    this.#publishes.close();
    this.#cron.stop();
    await this.#consumers.stop();
  }

  async #runJob(service: string, env: Record<string, string>, stdin: Uint8Array, topic: string): Promise<JobResult> {
    let ok = false;
    try {
      const result = await this.#dispatch(service, env, stdin, topic);
      ok = result.exitCode === 0 && !result.error;
      return result;
    } finally {
      this.onRun?.(service, env.ORCA_TRIGGER, ok);
    }
  }

  #dispatch(service: string, env: Record<string, string>, stdin: Uint8Array, topic: string): Promise<JobResult> {
    const handle = this.#handles.get(service);
    if (!handle && this.#remote) {
      return this.#remote(service, { env, stdin, topic }).catch((err) => ({
        exitCode: -1,
        outputTail: "",
        durationMs: 0,
        error: `on the node that runs it: ${(err as Error).message ?? err}`,
      }));
    }
    if (!handle) {
      return Promise.resolve({
        exitCode: -1,
        outputTail: "",
        durationMs: 0,
        error: `service ${service} is not running`,
      });
    }
    const runtime = this.#runtimes[handle.runtime];
    if (!runtime) {
      return Promise.resolve({ exitCode: -1, outputTail: "", durationMs: 0, error: `no ${handle.runtime} job runner` });
    }
    return runtime.runJob(handle, { env, stdin, topic });
  }
}

/** Whether a service has triggers that need a WASI command (cron, queue, event). */
export function needsCommand(spec: ServiceSpec): boolean {
  return spec.triggers.some((t) => {
    const p = parseTrigger(t);
    return !("error" in p) && p.type !== "http";
  });
}
