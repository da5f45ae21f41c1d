/**
 * The control plane's Raft log: every change of desired state is proposed
 * here, committed (stored durably on a quorum), then applied by the one state
 * machine (machine.ts) before the caller hears back. A lone server is a
 * one-member cluster: the same path, with no peers to wait for.
 *
 * The log lives in `$ORCA_HOME/raft.db` (SQLite, WAL, synchronous=FULL,
 * written on a worker thread); the state it applies lives in `orca.db`, with
 * the index of the last entry applied.
 */

import { OrcaError } from "../errors.ts";
import { type Message, NotLeaderError, RaftDriver, TimeoutError, type Transport, WorkerLogStore } from "../raft/mod.ts";
import { type CommandResult, type ControlCommand, ControlMachine, encodeCommand } from "./machine.ts";
import type { Store } from "./store.ts";

export interface ControlLogOptions {
  home: string;
  /** This member's id (the node id). */
  id: string;
  store: Store;
  /** The store failed: the process must stop (nothing may be acknowledged that is not stored). */
  onFatal(err: unknown): void;
  /** Take a snapshot (and compact the log) every this many entries (default 10,000). */
  snapshotEvery?: number;
  /** How long a proposal may take before the caller is told its outcome is unknown (default 10 s). */
  timeoutMs?: number;
}

/** What `orca nodes` shows of a member. */
export interface MemberStatus {
  id: string;
  role: string;
  leader?: string;
  term: number;
  commit: number;
  applied: number;
  /** The last entry the log was compacted at (0: never). */
  snapshot: number;
  voters: string[];
  learners: string[];
}

/** A member with no peers: nothing to send, nothing arrives. */
const noPeers: Transport<Message> = { send() {}, onMessage() {}, close: () => Promise.resolve() };

export class ControlLog {
  readonly #driver: RaftDriver<CommandResult>;
  readonly #store: WorkerLogStore;
  readonly #machine: ControlMachine;

  private constructor(driver: RaftDriver<CommandResult>, store: WorkerLogStore, machine: ControlMachine) {
    this.#driver = driver;
    this.#store = store;
    this.#machine = machine;
  }

  /** Opens the log, applies what it holds past the state's applied index, and resolves once this member leads. */
  static async open(opts: ControlLogOptions): Promise<ControlLog> {
    const store = new WorkerLogStore(`${opts.home}/raft.db`);
    const machine = new ControlMachine(opts.store);
    const held = Math.max(store.lastIndex(), store.snapshot()?.index ?? 0);
    if (machine.applied() > held) {
      await store.close();
      throw new OrcaError(
        "internal",
        `the Raft log (raft.db, through entry ${held}) is behind the state applied from it (orca.db, entry ${machine.applied()})`,
        {
          where: opts.home,
          hint: "raft.db and orca.db belong together: restore both from the same backup, or neither",
        },
      );
    }
    const driver = new RaftDriver<CommandResult>({
      id: opts.id,
      voters: [opts.id],
      store,
      transport: noPeers,
      machine,
      onFatal: opts.onFatal,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      timeoutMs: opts.timeoutMs ?? 10_000,
    });
    const log = new ControlLog(driver, store, machine);
    try {
      // Linearizable: everything committed before now is applied (a lone member leads at once).
      await log.barrier();
    } catch (err) {
      await log.close();
      throw err;
    }
    return log;
  }

  /** Commits `command` and resolves with what the state machine made of it; rejects with an OrcaError. */
  async propose(command: ControlCommand): Promise<unknown> {
    let result: CommandResult;
    try {
      result = await this.#driver.propose(encodeCommand(command));
    } catch (err) {
      throw unavailable(err);
    }
    if (!result.ok) throw new OrcaError(result.error.code, result.error.message);
    return result.value;
  }

  /** Calls `listener` after each change applied (commands and installed snapshots), in apply order. */
  onApplied(listener: () => void): void {
    this.#machine.onApplied(listener);
  }

  /** Resolves once this member has applied everything committed before the call (a linearizable read may follow). */
  async barrier(): Promise<void> {
    try {
      await this.#driver.readBarrier();
    } catch (err) {
      throw unavailable(err);
    }
  }

  status(): MemberStatus {
    const node = this.#driver.node;
    const config = node.config;
    return {
      id: node.id,
      role: node.role,
      ...(node.leader !== undefined && { leader: node.leader }),
      term: node.term,
      commit: node.commit,
      applied: this.#driver.applied,
      snapshot: node.snapshotIndex,
      voters: [...config.voters],
      learners: [...config.learners],
    };
  }

  async close(): Promise<void> {
    this.#driver.stop();
    await this.#store.close();
  }
}

/** A proposal or read the log could not finish: 503, with when to try again. */
function unavailable(err: unknown): OrcaError {
  if (err instanceof NotLeaderError) {
    return new OrcaError("unavailable", `no leader to commit to (${err.message})`, {
      retryAfter: 1,
      hint: "the cluster is electing a leader; try again in a moment",
    });
  }
  if (err instanceof TimeoutError) {
    return new OrcaError("unavailable", `the change was not committed in time; it may still be (${err.message})`, {
      retryAfter: 1,
      hint: "check with `orca status` before sending it again",
    });
  }
  return err instanceof OrcaError ? err : new OrcaError("internal", (err as Error).message ?? String(err));
}
