/**
 * Runs cron jobs on time. One loop per job: sleep until the next firing,
 * claim it, run the job, record it. A firing is claimed before it runs (the
 * backend stores the last firing claimed; in Orca through the log), so it
 * runs at most once however many servers keep time and whoever leads. Runs
 * of one job never overlap: a firing that comes while the previous run is
 * still going is recorded as skipped. A firing missed (the server was down,
 * or no server led at the time) is run once, late: the latest missed one.
 */

import type { CronSchedule } from "../config/mod.ts";
import type { Clock } from "./clock.ts";
import { nextFire } from "./cron.ts";

export interface CronJob {
  /** `project/name` */
  service: string;
  /** The trigger string, e.g. `cron:*\/5 * * * * *`; a service may have several. */
  trigger: string;
  schedule: CronSchedule;
}

export interface CronRun {
  service: string;
  trigger: string;
  scheduledAt: number;
  startedAt: number;
  durationMs: number;
  status: "ok" | "failed" | "skipped";
  exitCode?: number;
  outputTail: string;
  error?: string;
}

/** Where the scheduler keeps what must survive a restart (and a failover). */
export interface CronBackend {
  /** The latest firing claimed for a job, if any. */
  lastScheduled(service: string, trigger: string): number | undefined;
  /** Claims firing `at` of a job: resolves true if no firing at or after it was claimed before. */
  claim(service: string, trigger: string, at: number): Promise<boolean>;
  recordRun(run: CronRun): Promise<void>;
}

export type RunJob = (job: CronJob, scheduledAt: number) => Promise<
  { exitCode: number; outputTail: string; error?: string }
>;

interface Loop {
  job: CronJob;
  abort: AbortController;
  running: boolean;
  next?: number;
}

export class CronScheduler {
  readonly #clock: Clock;
  readonly #backend: CronBackend;
  readonly #run: RunJob;
  readonly #log: (line: string) => void;
  readonly #leads: () => boolean;
  readonly #loops = new Map<string, Loop>();

  /** `leads`: whether this server runs the cluster's jobs now (its leader); the others keep time and do nothing. */
  constructor(
    opts: { clock: Clock; backend: CronBackend; run: RunJob; log?: (line: string) => void; leads?: () => boolean },
  ) {
    this.#clock = opts.clock;
    this.#backend = opts.backend;
    this.#run = opts.run;
    this.#log = opts.log ?? (() => {});
    this.#leads = opts.leads ?? (() => true);
  }

  /** Makes the running jobs exactly `jobs`: new ones start, gone ones stop, same ones continue. */
  setJobs(jobs: CronJob[]): void {
    const wanted = new Map(jobs.map((j) => [key(j), j]));
    for (const [k, loop] of this.#loops) {
      const j = wanted.get(k);
      if (!j || j.schedule.source !== loop.job.schedule.source || j.schedule.timeZone !== loop.job.schedule.timeZone) {
        loop.abort.abort();
        this.#loops.delete(k);
      }
    }
    for (const [k, job] of wanted) {
      if (this.#loops.has(k)) continue;
      const loop: Loop = { job, abort: new AbortController(), running: false };
      this.#loops.set(k, loop);
      this.#start(loop);
    }
  }

  /** The next firing of each job of `service`. */
  nextRuns(service: string): { trigger: string; at?: number }[] {
    return [...this.#loops.values()].filter((l) => l.job.service === service).map((l) => ({
      trigger: l.job.trigger,
      at: l.next,
    }));
  }

  /** Runs each job's latest missed firing, if nobody claimed it (this server just became the one that runs jobs). */
  catchUp(): void {
    const now = this.#clock.now();
    for (const loop of this.#loops.values()) {
      this.#catchUp(loop, now + 1).catch((err) => this.#log(`cron ${loop.job.service}: catch-up failed: ${err}`));
    }
  }

  stop(): void {
    for (const loop of this.#loops.values()) loop.abort.abort();
    this.#loops.clear();
  }

  #start(loop: Loop): void {
    const now = this.#clock.now();
    this.#catchUp(loop, now + 1).then(() => this.#loop(loop, now)).catch((err) =>
      this.#log(`cron ${loop.job.service}: scheduler loop failed: ${err}`)
    );
  }

  /** Runs the latest firing before `before` that nobody claimed (none for a job that never ran). */
  async #catchUp(loop: Loop, before: number): Promise<void> {
    const { job } = loop;
    if (!this.#leads()) return;
    const last = this.#backend.lastScheduled(job.service, job.trigger);
    if (last === undefined) return;
    let missed: number | undefined;
    for (let t = nextFire(job.schedule, last); t !== undefined && t < before; t = nextFire(job.schedule, t)) missed = t;
    if (missed === undefined) return;
    this.#log(`cron ${job.service} (${job.trigger}): running the firing missed at ${new Date(missed).toISOString()}`);
    await this.#fire(loop, missed);
  }

  async #loop(loop: Loop, from: number): Promise<void> {
    const signal = loop.abort.signal;
    let after = from;
    while (!signal.aborted) {
      const at = nextFire(loop.job.schedule, after);
      loop.next = at;
      if (at === undefined) return;
      await this.#clock.sleepUntil(at, signal);
      if (signal.aborted) return;
      // A firing no server claimed in time (a failover under way) runs once, late, before this one.
      await this.#catchUp(loop, at);
      await this.#fire(loop, at);
      after = at;
    }
  }

  async #fire(loop: Loop, scheduledAt: number): Promise<void> {
    const { job } = loop;
    if (!this.#leads()) return;
    const startedAt = this.#clock.now();
    let claimed: boolean;
    try {
      claimed = await this.#backend.claim(job.service, job.trigger, scheduledAt);
    } catch (err) {
      this.#log(
        `cron ${job.service} (${job.trigger}): firing at ${new Date(scheduledAt).toISOString()} not claimed: ${err}`,
      );
      return;
    }
    if (!claimed) return; // another server ran it
    const record = (run: CronRun) =>
      this.#backend.recordRun(run).catch((err) => this.#log(`cron ${job.service}: run not recorded: ${err}`));
    if (loop.running) {
      record({
        service: job.service,
        trigger: job.trigger,
        scheduledAt,
        startedAt,
        durationMs: 0,
        status: "skipped",
        outputTail: "",
        error: "the previous run was still going",
      });
      return;
    }
    loop.running = true;
    this.#run(job, scheduledAt).then(
      (r) => ({ ...r, status: r.exitCode === 0 && !r.error ? "ok" as const : "failed" as const }),
      (err) => ({ exitCode: -1, outputTail: "", error: String(err), status: "failed" as const }),
    ).then((r) => {
      loop.running = false;
      record({
        service: job.service,
        trigger: job.trigger,
        scheduledAt,
        startedAt,
        durationMs: this.#clock.now() - startedAt,
        ...r,
      });
    });
  }
}

function key(job: CronJob): string {
  return `${job.service} ${job.trigger}`;
}
