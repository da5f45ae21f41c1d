import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";
import type { GitSource } from "./git.ts";
import { type Changes, ReconcileLoop } from "./loop.ts";

/** A repository in memory: commits with a tree id for the tracked folder, and a switch to make fetches fail. */
class MemoryGit implements GitSource {
  commits: { id: string; tree: string }[] = [];
  down = false;
  checkedOut: string[] = [];
  fetch() {
    if (this.down) return Promise.reject(new OrcaError("unavailable", "git fetch failed: connection refused"));
    const head = this.commits.at(-1);
    return head ? Promise.resolve(head.id) : Promise.reject(new OrcaError("unavailable", "no branch main"));
  }
  tree(commit: string) {
    return Promise.resolve(this.commits.find((c) => c.id === commit)?.tree);
  }
  checkout(commit: string) {
    this.checkedOut.push(commit);
    return Promise.resolve("/clone");
  }
}

/** Timers that run only when the test says so. */
function manualClock() {
  let now = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 1;
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      timers.set(next, { at: now + ms, fn });
      return next++;
    },
    clearTimer: (id: unknown) => void timers.delete(id as number),
    pending: () => [...timers.values()].map((t) => t.at - now),
    /** Moves to the next timer and runs it. */
    async fire() {
      const [id, t] = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      timers.delete(id);
      now = t.at;
      t.fn();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

function setup(deploy: (dir: string) => Promise<{ id: number | null; summary: Changes }>) {
  const git = new MemoryGit();
  const clock = manualClock();
  const logs: Record<string, unknown>[] = [];
  const deployed: string[] = [];
  const loop = new ReconcileLoop({
    git,
    path: "prod",
    intervalMs: 1000,
    deploy: async (dir, commit) => {
      deployed.push(commit);
      return await deploy(dir);
    },
    ...clock,
    log: (e) => logs.push(e),
  });
  return { git, clock, logs, deployed, loop };
}

const changes: Changes = { created: ["web/hello"], updated: [], removed: [], unchanged: [] };

Deno.test("the loop: a new commit deploys, an unchanged folder does not, an invalid one is held back", async () => {
  let invalid = false;
  const { git, clock, logs, deployed, loop } = setup((dir) => {
    assert.equal(dir, "/clone/prod");
    if (invalid) {
      return Promise.reject(new OrcaError("config", "`memroy` is not a known key", { where: "/clone/prod/x.toml:6" }));
    }
    return Promise.resolve({ id: 1, summary: changes });
  });
  git.commits.push({ id: "c1", tree: "t1" });
  loop.start();
  await clock.fire();
  await loop.idle();
  assert.deepEqual(deployed, ["c1"]);
  assert.equal(loop.status().applied, "c1");
  assert.deepEqual(clock.pending(), [1000]);
  // A commit that leaves the folder as it was: nothing deployed, the commit counts as applied.
  git.commits.push({ id: "c2", tree: "t1" });
  await clock.fire();
  await loop.idle();
  assert.deepEqual(deployed, ["c1"]);
  assert.equal(loop.status().applied, "c2");
  // An invalid commit: reported once, not deployed again on later polls, the error's file shown in the repository.
  invalid = true;
  git.commits.push({ id: "c3", tree: "t3" });
  await clock.fire();
  await loop.idle();
  await clock.fire();
  await loop.idle();
  assert.deepEqual(deployed, ["c1", "c3"]);
  const s = loop.status();
  assert.equal(s.applied, "c2");
  assert.equal(s.healthy, false);
  assert.equal(s.lastError?.where, "prod/x.toml:6");
  assert.equal(s.lastSync?.result, "invalid");
  assert.equal(logs.filter((l) => l.result === "invalid").length, 1);
  assert.deepEqual(clock.pending(), [1000]); // an invalid commit is no reason to back off
  // The fix deploys and clears the error.
  invalid = false;
  git.commits.push({ id: "c4", tree: "t4" });
  await clock.fire();
  await loop.idle();
  assert.equal(loop.status().applied, "c4");
  assert.equal(loop.status().healthy, true);
  loop.stop();
  assert.deepEqual(clock.pending(), []);
});

Deno.test("the loop: failures back off and are retried; a success resets the interval", async () => {
  let serverDown = false;
  const { git, clock, deployed, loop } = setup(() =>
    serverDown
      ? Promise.reject(new OrcaError("unavailable", "node worker-1 does not answer", { retryAfter: 5 }))
      : Promise.resolve({ id: 2, summary: changes })
  );
  git.commits.push({ id: "c1", tree: "t1" });
  git.down = true;
  loop.start();
  const waits: number[] = [];
  for (let i = 0; i < 4; i++) {
    await clock.fire();
    await loop.idle();
    waits.push(clock.pending()[0]);
  }
  assert.deepEqual(waits, [2000, 4000, 8000, 16_000]);
  assert.equal(loop.status().consecutiveFailures, 4);
  git.down = false;
  // The repository back, but the server refuses (an offline node): still a failure, the same commit retried.
  serverDown = true;
  await clock.fire();
  await loop.idle();
  assert.equal(loop.status().lastSync?.result, "failed");
  assert.equal(loop.status().lastError?.retryAfter, 5);
  assert.deepEqual(clock.pending(), [32_000]);
  serverDown = false;
  await clock.fire();
  await loop.idle();
  assert.deepEqual(deployed, ["c1", "c1"]);
  assert.equal(loop.status().consecutiveFailures, 0);
  assert.deepEqual(clock.pending(), [1000]);
  loop.stop();
});

Deno.test("the loop: syncNow during a sync runs one more after it; callers meanwhile share it", async () => {
  let release!: () => void;
  const { git, deployed, loop } = setup(() =>
    new Promise((resolve) => release = () => resolve({ id: 3, summary: changes }))
  );
  git.commits.push({ id: "c1", tree: "t1" });
  const first = loop.syncNow("webhook");
  await new Promise((r) => setTimeout(r, 0));
  git.commits.push({ id: "c2", tree: "t2" });
  const second = loop.syncNow("webhook");
  const third = loop.syncNow("webhook");
  assert.equal(second, third);
  release();
  assert.equal((await first).commit, "c1");
  await new Promise((r) => setTimeout(r, 0));
  release();
  assert.equal((await second).commit, "c2");
  assert.deepEqual(deployed, ["c1", "c2"]);
  loop.stop();
});
