import assert from "node:assert/strict";
import { parseCron } from "../config/mod.ts";
import { ManualClock } from "./clock.ts";
import { type CronBackend, type CronJob, type CronRun, CronScheduler } from "./cron_scheduler.ts";

function memoryBackend() {
  const last = new Map<string, number>();
  const runs: CronRun[] = [];
  const backend: CronBackend = {
    lastScheduled: (s, t) => last.get(`${s} ${t}`),
    claim(s, t, at) {
      const before = last.get(`${s} ${t}`);
      if (before !== undefined && before >= at) return Promise.resolve(false);
      last.set(`${s} ${t}`, at);
      return Promise.resolve(true);
    },
    recordRun: (r) => Promise.resolve(void runs.push(r)),
  };
  return { backend, runs, last };
}

function job(expr: string, service = "p/job"): CronJob {
  const schedule = parseCron(expr);
  if ("error" in schedule) throw new Error(schedule.error);
  return { service, trigger: `cron:${expr}`, schedule };
}

const t0 = Date.parse("2026-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString().slice(11, 19);

Deno.test("a per-second job runs at every second, with its scheduled time", async () => {
  const clock = new ManualClock(t0 + 100);
  const { backend, runs } = memoryBackend();
  const scheduled: number[] = [];
  const cron = new CronScheduler({
    clock,
    backend,
    run: (_job, at) => {
      scheduled.push(at);
      return Promise.resolve({ exitCode: 0, outputTail: "done\n" });
    },
  });
  cron.setJobs([job("* * * * * *")]);
  await clock.advance(3000);
  assert.deepEqual(scheduled.map(iso), ["00:00:01", "00:00:02", "00:00:03"]);
  assert.deepEqual(runs.map((r) => r.status), ["ok", "ok", "ok"]);
  assert.equal(cron.nextRuns("p/job")[0].at, t0 + 4000);
  cron.stop();
});

Deno.test("runs never overlap: a firing during a run is recorded as skipped", async () => {
  const clock = new ManualClock(t0);
  const { backend, runs } = memoryBackend();
  const cron = new CronScheduler({
    clock,
    backend,
    // Each run takes 2.5 s of (fake) time.
    run: async () => {
      await clock.sleepUntil(clock.now() + 2500);
      return { exitCode: 1, outputTail: "", error: undefined };
    },
  });
  cron.setJobs([job("* * * * * *")]);
  await clock.advance(4000);
  assert.deepEqual(runs.map((r) => `${iso(r.scheduledAt)} ${r.status}`), [
    "00:00:02 skipped",
    "00:00:03 skipped",
    "00:00:01 failed",
  ]);
  // The 00:00:01 run ended at 00:00:03.5, so the 00:00:04 firing starts a new run (recorded when it ends).
  await clock.advance(2500);
  assert.deepEqual(runs.slice(3).map((r) => `${iso(r.scheduledAt)} ${r.status}`), [
    "00:00:05 skipped",
    "00:00:06 skipped",
    "00:00:04 failed",
  ]);
  cron.stop();
});

Deno.test("a firing missed during downtime runs once on start; a new job does not catch up", async () => {
  const clock = new ManualClock(Date.parse("2026-01-01T10:30:00Z"));
  const { backend, runs, last } = memoryBackend();
  last.set("p/job cron:0 * * * *", Date.parse("2026-01-01T07:00:00Z")); // 08, 09, 10 were missed
  const cron = new CronScheduler({ clock, backend, run: () => Promise.resolve({ exitCode: 0, outputTail: "" }) });
  cron.setJobs([job("0 * * * *"), job("0 * * * *", "p/fresh")]);
  await clock.advance(1);
  assert.deepEqual(runs.map((r) => `${r.service} ${iso(r.scheduledAt)}`), ["p/job 10:00:00"]);
  await clock.advance(30 * 60_000);
  // Two jobs firing at the same instant: in either order.
  assert.deepEqual(runs.map((r) => `${r.service} ${iso(r.scheduledAt)}`).sort(), [
    "p/fresh 11:00:00",
    "p/job 10:00:00",
    "p/job 11:00:00",
  ]);
  cron.stop();
});

Deno.test("setJobs stops removed jobs and keeps unchanged ones", async () => {
  const clock = new ManualClock(t0);
  const { backend, runs } = memoryBackend();
  const cron = new CronScheduler({ clock, backend, run: () => Promise.resolve({ exitCode: 0, outputTail: "" }) });
  cron.setJobs([job("* * * * * *", "p/a"), job("* * * * * *", "p/b")]);
  await clock.advance(1000);
  cron.setJobs([job("* * * * * *", "p/b")]);
  await clock.advance(2000);
  assert.deepEqual(runs.map((r) => r.service), ["p/a", "p/b", "p/b", "p/b"]);
  assert.deepEqual(cron.nextRuns("p/a"), []);
  cron.stop();
});

/** A scheduler that runs jobs while `leads()`, noting each firing it ran in `ran`. */
function recording(clock: ManualClock, backend: CronBackend, leads: () => boolean, ran: number[]): CronScheduler {
  return new CronScheduler({
    clock,
    backend,
    leads,
    run: (_job, at) => {
      ran.push(at);
      return Promise.resolve({ exitCode: 0, outputTail: "" });
    },
  });
}

Deno.test("only the server that leads runs cron jobs: the others keep time and run nothing", async () => {
  const clock = new ManualClock(t0 + 100);
  const { backend, runs } = memoryBackend();
  let leads = false;
  const scheduled: number[] = [];
  const cron = recording(clock, backend, () => leads, scheduled);
  cron.setJobs([job("* * * * * *")]);
  await clock.advance(2000);
  assert.deepEqual(scheduled, [], "a follower runs nothing");
  assert.deepEqual(runs, [], "and records nothing");
  leads = true;
  await clock.advance(2000);
  assert.deepEqual(scheduled.map(iso), ["00:00:03", "00:00:04"]);
  cron.stop();
});

Deno.test("a firing is claimed before it runs: two servers keeping time run it once; a missed one runs late, once", async () => {
  const clock = new ManualClock(t0 + 100);
  const { backend, runs } = memoryBackend(); // shared by both: what the log holds
  const leads = { x: true, y: false };
  const ran: string[] = [];
  const server = (name: "x" | "y") =>
    new CronScheduler({
      clock,
      backend,
      leads: () => leads[name],
      run: (_job, at) => {
        ran.push(`${name} ${iso(at)}`);
        return Promise.resolve({ exitCode: 0, outputTail: "" });
      },
    });
  const x = server("x");
  const y = server("y");
  x.setJobs([job("* * * * * *")]);
  y.setJobs([job("* * * * * *")]);
  await clock.advance(2000);
  assert.deepEqual(ran, ["x 00:00:01", "x 00:00:02"]);
  // x dies; for two ticks nobody leads; then y does: it runs the latest missed firing once, late, then its own.
  leads.x = false;
  await clock.advance(2000);
  leads.y = true;
  await clock.advance(1000);
  assert.deepEqual(ran, ["x 00:00:01", "x 00:00:02", "y 00:00:04", "y 00:00:05"]);
  // Both lead for a moment (the old leader does not know yet): each firing still runs once.
  leads.x = true;
  await clock.advance(2000);
  assert.equal(ran.filter((r) => r.endsWith("00:00:06")).length, 1);
  assert.equal(new Set(runs.map((r) => r.scheduledAt)).size, runs.length, "no firing ran twice");
  x.stop();
  y.stop();
});

Deno.test("catchUp runs a firing nobody claimed at once (a new leader), not a period later", async () => {
  const clock = new ManualClock(Date.parse("2026-01-01T11:59:59.900Z"));
  const { backend } = memoryBackend();
  let leads = true;
  const times: number[] = [];
  const cron = recording(clock, backend, () => leads, times);
  cron.setJobs([job("0 * * * *")]);
  await clock.advance(60 * 60_000); // 12:00 runs: the job has a history now
  assert.deepEqual(times.map(iso), ["12:00:00"]);
  leads = false; // 13:00 comes while no server leads
  await clock.advance(60 * 60_000);
  assert.deepEqual(times.map(iso), ["12:00:00"]);
  leads = true;
  cron.catchUp(); // this server became the leader at 13:59:59.9
  await clock.advance(0);
  assert.deepEqual(times.map(iso), ["12:00:00", "13:00:00"], "13:00 runs now, not a period later");
  await clock.advance(60_000);
  assert.deepEqual(times.map(iso), ["12:00:00", "13:00:00", "14:00:00"]);
  cron.stop();
});
