/**
 * The reconciliation loop of `orca gitops` (seed 004): poll the branch; when
 * the commit changes and the tracked folder with it, check it out and deploy
 * it exactly as `orca deploy DIR` would. An invalid commit is not retried
 * (the cluster keeps running the last good one; the status says why) until
 * the next commit; a failed poll or an unreachable server backs off. One sync
 * runs at a time; a webhook asks for one now.
 *
 * Clock, timers, the repository and the deploy are parameters: the loop reads
 * no globals.
 */

import { OrcaError } from "../errors.ts";
import type { GitSource } from "./git.ts";
import { nextDelay } from "./schedule.ts";

/** What one deploy changed (the server's deploy summary). */
export interface Changes {
  created: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  canary?: string[];
}

export interface LoopOptions {
  git: GitSource;
  /** The folder inside the repository that holds services/ (and cluster.toml). */
  path: string;
  intervalMs: number;
  /** Deploys the checked-out folder of `commit`; throws an OrcaError when it cannot. */
  deploy(dir: string, commit: string): Promise<{ id: number | null; summary: Changes }>;
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(id: unknown): void;
  /** One structured line per sync. */
  log(entry: Record<string, unknown>): void;
}

export type SyncResult = "deployed" | "unchanged" | "invalid" | "failed";

export interface SyncOutcome {
  result: SyncResult;
  commit?: string;
  at: number;
  durationMs: number;
  /** Why it was invalid or failed: message, file:line, hint, and the OrcaError code. */
  error?: { code: string; message: string; where?: string; hint?: string; retryAfter?: number };
  changes?: Changes;
  deployId?: number | null;
  trigger: string;
}

export interface LoopStatus {
  /** The commit the branch pointed at on the last successful poll. */
  head?: string;
  /** The last commit deployed (or found unchanged): what the cluster runs. */
  applied?: string;
  lastSync?: SyncOutcome;
  lastError?: SyncOutcome["error"] & { commit?: string; at: number };
  consecutiveFailures: number;
  nextPollAt?: number;
  healthy: boolean;
  syncing: boolean;
}

/** Codes that say the commit itself is wrong: deploying it again cannot succeed. */
const permanent = new Set(["config", "invalid", "wasm", "conflict", "not_found", "too_large", "unsupported"]);

export class ReconcileLoop {
  readonly #o: LoopOptions;
  #head?: string;
  #applied?: string;
  #appliedTree?: string;
  /** A commit found invalid: not deployed again. */
  #rejected?: string;
  #last?: SyncOutcome;
  #lastError?: LoopStatus["lastError"];
  #failures = 0;
  #nextPollAt?: number;
  #timer?: unknown;
  #running?: Promise<SyncOutcome>;
  #again?: Promise<SyncOutcome>;
  #stopped = true;
  /** The work tree: cut from the file names errors give, which then read as paths in the repository. */
  #root?: string;

  constructor(opts: LoopOptions) {
    this.#o = opts;
  }

  /** Polls now, then on every interval until `stop()`. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#nextPollAt = undefined;
  }

  /** Resolves once the sync in progress (if any) is over. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  status(): LoopStatus {
    return {
      head: this.#head,
      applied: this.#applied,
      lastSync: this.#last,
      lastError: this.#lastError,
      consecutiveFailures: this.#failures,
      nextPollAt: this.#nextPollAt,
      healthy: this.#failures === 0 && this.#lastError === undefined,
      syncing: this.#running !== undefined,
    };
  }

  /**
   * Syncs now (a webhook, a signal). A sync already running is let finish and one more follows it: the push that
   * asked may have landed after that one fetched. Requests while one waits share it.
   */
  syncNow(trigger: string): Promise<SyncOutcome> {
    if (!this.#running) return this.#begin(trigger);
    this.#again ??= this.#running.catch(() => {}).then(() => {
      this.#again = undefined;
      return this.#begin(trigger);
    });
    return this.#again;
  }

  #begin(trigger: string): Promise<SyncOutcome> {
    if (this.#timer !== undefined) this.#o.clearTimer(this.#timer);
    this.#timer = undefined;
    const run = this.#sync(trigger).finally(() => {
      this.#running = undefined;
      if (!this.#stopped) this.#schedule(nextDelay(this.#o.intervalMs, this.#failures));
    });
    this.#running = run;
    return run;
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined) this.#o.clearTimer(this.#timer);
    this.#nextPollAt = this.#o.now() + ms;
    this.#timer = this.#o.setTimer(() => {
      this.#timer = undefined;
      if (!this.#running) this.#begin("poll").catch(() => {});
    }, ms);
  }

  async #sync(trigger: string): Promise<SyncOutcome> {
    const start = this.#o.now();
    const done = (o: Omit<SyncOutcome, "at" | "durationMs" | "trigger">, repeat = false): SyncOutcome => {
      const outcome = { ...o, at: start, durationMs: this.#o.now() - start, trigger };
      this.#last = outcome;
      if (o.result === "failed") this.#failures++;
      else this.#failures = 0;
      if (repeat) return outcome; // the same commit as the last poll: nothing to log, the error stays as it was
      this.#lastError = o.error && { ...o.error, commit: o.commit, at: start };
      this.#o.log({
        msg: "sync",
        trigger,
        result: o.result,
        commit: o.commit,
        ...(o.changes && { changes: o.changes, deploy: o.deployId }),
        ...(o.error && { error: o.error }),
        duration_ms: outcome.durationMs,
        ...(o.result === "failed" &&
          { failures: this.#failures, retry_in_ms: nextDelay(this.#o.intervalMs, this.#failures) }),
      });
      return outcome;
    };
    let commit: string;
    try {
      commit = await this.#o.git.fetch();
    } catch (err) {
      return done({ result: "failed", error: describe(err) });
    }
    this.#head = commit;
    if (commit === this.#rejected && this.#lastError) {
      // Nothing new: an invalid commit stays reported (and not deployed) until one replaces it.
      const { commit: _, at: __, ...error } = this.#lastError;
      return done({ result: "invalid", commit, error }, trigger === "poll");
    }
    if (commit === this.#applied) return done({ result: "unchanged", commit }, trigger === "poll" && !this.#lastError);
    try {
      const tree = await this.#o.git.tree(commit, this.#o.path);
      if (tree === undefined) {
        throw new OrcaError("config", `the repository has no folder ${this.#o.path} at commit ${commit.slice(0, 12)}`, {
          hint: "push it, or point --path at the folder that holds services/",
        });
      }
      if (tree === this.#appliedTree) {
        this.#applied = commit;
        this.#rejected = undefined;
        return done({ result: "unchanged", commit });
      }
      const root = this.#root = await this.#o.git.checkout(commit);
      const dir = this.#o.path === "." ? root : `${root}/${this.#o.path}`;
      const result = await this.#o.deploy(dir, commit);
      this.#applied = commit;
      this.#appliedTree = tree;
      this.#rejected = undefined;
      return done({ result: "deployed", commit, changes: result.summary, deployId: result.id });
    } catch (err) {
      const error = describe(err, this.#root);
      if (!permanent.has(error.code)) return done({ result: "failed", commit, error });
      this.#rejected = commit;
      return done({ result: "invalid", commit, error });
    }
  }
}

function describe(err: unknown, root?: string): NonNullable<SyncOutcome["error"]> {
  if (err instanceof OrcaError) {
    const where = root && err.where?.startsWith(`${root}/`) ? err.where.slice(root.length + 1) : err.where;
    return {
      code: err.code,
      message: root ? err.message.replaceAll(`${root}/`, "") : err.message,
      ...(where && { where }),
      ...(err.hint && { hint: err.hint }),
      ...(err.retryAfter !== undefined && { retryAfter: err.retryAfter }),
    };
  }
  return { code: "unavailable", message: err instanceof Error ? err.message : String(err) };
}
