/**
 * The driver: runs a RaftNode against real time, a durable LogStore and a
 * Transport, and applies what commits to a state machine. It keeps the Ready
 * contract (raft/core.ts): a Ready's snapshot, entries and hard state are
 * stored in one write (one fsync) before any message that depends on them goes
 * out, then the committed entries are applied, then the core is advanced.
 *
 * Throughput comes from batching: everything that arrives while a write is on
 * its way (proposals, acknowledgements) is in the next Ready, so one fsync
 * stores as many entries as came in meanwhile. A leader's appends carry only
 * what its term already made durable, so they go out before its own write
 * (the Raft thesis, 10.2.1): the followers' writes overlap the leader's, and
 * the leader counts itself only for what it has stored.
 *
 * A store that fails stops the node (`onFatal`): it must not answer from a
 * disk it cannot trust.
 */

import { type ConfigChange, type Message, RaftNode, type Ready, type Role } from "./core.ts";
import { ConfigChangeError, NotLeaderError, TimeoutError } from "./errors.ts";
import { Compaction, type Taken } from "./compaction.ts";
import { coalesce, leaderMessage } from "./messages.ts";
import { Proposals } from "./proposals.ts";
import { ReadBarriers } from "./reads.ts";
import type { Entry, HardState, LogStore, StateMachine, StoreWrite, Transport } from "./types.ts";

export { ConfigChangeError, NotLeaderError, TimeoutError };
export type { StateMachine };

export interface DriverOptions<R> {
  id: string;
  /** The initial voters, this node included (a stored config overrides them). */
  voters: string[];
  store: LogStore;
  transport: Transport<Message>;
  machine: StateMachine<R>;
  /**
   * With a store that writes synchronously (`persistNow`) on the state machine's database: runs `fn` in one
   * transaction of it. Each turn of the driver then stores entries and applies what they commit in one transaction.
   */
  transaction?: (fn: () => void) => void;
  /** Called once if the store fails; the driver has stopped by then. The process should exit. */
  onFatal: (err: unknown) => void;
  /** Milliseconds per tick; elections start after 10-20 ticks without a leader, heartbeats every 2. */
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Most entries in one append message. */
  maxBatch?: number;
  /**
   * Take a snapshot (and compact the log) every this many applied entries, and not before the entries applied
   * since the last one hold as many bytes as it did (so the work of snapshots stays in proportion to what is
   * written, however large the state); 0: never.
   */
  snapshotEvery?: number;
  /**
   * Take one too once the entries applied since the last hold this many bytes (default 16 MiB), however few they
   * are: what the log keeps in memory stays bounded when entries are large. The proportion above still holds.
   */
  snapshotAfterBytes?: number;
  /** A proposal or read not done in this long is given up (its outcome unknown, for a proposal). */
  timeoutMs?: number;
  random?: () => number;
}

export interface DriverStats {
  /** Writes to the store (each one fsync). */
  fsyncs: number;
  /** Entries those writes stored. */
  entriesWritten: number;
  /** Milliseconds spent in those writes. */
  writeMs: number;
  /** Snapshots this node took (compacting its log), and those it installed from a leader. */
  snapshotsTaken: number;
  snapshotsInstalled: number;
  applied: number;
  /** Reads this node answered while following (with the leader's read index). */
  followerReads: number;
  term: number;
  role: Role;
  leader?: string;
}

export class RaftDriver<R> {
  readonly node: RaftNode;
  readonly stats: DriverStats;
  readonly #opts: DriverOptions<R>;
  readonly #proposals: Proposals<R>;
  readonly #reads: ReadBarriers;
  #applied: number;
  /** The last index the store holds durably: a machine that keeps its applied index never applies past it. */
  #stable: number;
  /** The hard state on disk, and the last one written (not yet committed, inside a transaction). */
  #stored: HardState;
  #written: HardState;
  readonly #timer: ReturnType<typeof setInterval>;
  /**
   * Runs the loop as a task of its own: a microtask would run it before other arrivals are in, and each proposal
   * would cost a write of its own (measured: a lone server's publishes at 16 in flight fell to a third).
   */
  readonly #wake = new MessageChannel();
  readonly #gatherers: (() => void)[] = [];
  #gathering = false;
  /** Whether each turn of the loop is one transaction of the store and the machine (`transaction`, `persistNow`). */
  readonly #grouped: boolean;
  #woken = false;
  #running = false;
  readonly #compaction: Compaction;
  #stopped = false;

  constructor(opts: DriverOptions<R>) {
    this.#opts = opts;
    const store = opts.store;
    this.#grouped = opts.transaction !== undefined && store.persistNow !== undefined;
    const snapshot = store.snapshot();
    const entries = store.lastIndex() >= store.firstIndex()
      ? store.entries(store.firstIndex(), store.lastIndex() + 1)
      : [];
    this.#stored = store.hardState();
    this.#written = this.#stored;
    const durable = opts.machine.applied?.() ?? 0;
    // A machine that kept its state is at least as new as a snapshot it applied; a newer snapshot replaces it.
    if (snapshot && snapshot.index > durable) opts.machine.restore(snapshot.data);
    this.#applied = Math.max(snapshot?.index ?? 0, durable);
    this.#compaction = new Compaction(
      opts.snapshotEvery ?? 0,
      opts.snapshotAfterBytes ?? 16 << 20,
      snapshot?.data.length ?? 0,
    );
    this.#stable = Math.max(store.lastIndex(), snapshot?.index ?? 0);
    this.#proposals = new Proposals(opts.timeoutMs ?? 5000);
    this.#reads = new ReadBarriers({
      node: () => this.node,
      schedule: () => this.#schedule(),
      retryMs: (opts.tickMs ?? 20) * (opts.electionTicks ?? 10),
      timeoutMs: opts.timeoutMs ?? 5000,
      random: opts.random ?? Math.random,
    });
    this.node = new RaftNode({
      id: opts.id,
      voters: opts.voters,
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 2,
      maxBatch: opts.maxBatch ?? 256,
      random: opts.random ?? Math.random,
      restore: { hardState: this.#stored, entries, snapshot, applied: this.#applied },
    });
    this.stats = {
      fsyncs: 0,
      entriesWritten: 0,
      writeMs: 0,
      snapshotsTaken: 0,
      snapshotsInstalled: 0,
      applied: this.#applied,
      followerReads: 0,
      term: this.node.term,
      role: "follower",
    };
    opts.transport.onMessage((_from, m) => {
      if (this.#stopped) return;
      this.node.step(m);
      this.#applyCommitted();
      this.#reads.answer(this.#applied);
      // A follower writes an append at once (one hop less before its answer); the rest waits for the next wake.
      if (m.type === "append" && this.#grouped && !this.#running) this.#run();
      else this.#schedule();
    });
    this.#wake.port1.onmessage = () => this.#run();
    // A lone voter needs no election timeout (nobody else could lead): it campaigns at once.
    const config = this.node.config;
    if (config.voters.length === 1 && config.voters[0] === opts.id && !config.outgoing?.length) {
      for (let i = 0; i < 2 * (opts.electionTicks ?? 10) && this.node.role !== "leader"; i++) this.node.tick();
    }
    this.#timer = setInterval(() => this.#tick(), opts.tickMs ?? 20);
    this.#schedule();
  }

  get leader(): string | undefined {
    return this.node.leader;
  }

  get applied(): number {
    return this.#applied;
  }

  /**
   * Proposes `data` (tagged with the client's session, so a retry applies once) and resolves with what the state
   * machine returned for it once applied here. Rejects with NotLeaderError unless this node leads, and with
   * TimeoutError (outcome unknown) or NotLeaderError (lost to a new leader) if it does not commit. `serial`: the
   * caller proposes one write at a time.
   */
  propose(data: Uint8Array, session?: { client: string; seq: number }, opts: { serial?: boolean } = {}): Promise<R> {
    if (this.#stopped) return Promise.reject(new NotLeaderError(undefined, "stopped"));
    const term = this.node.term;
    const index = this.node.propose(data, session);
    if (index === undefined) return Promise.reject(new NotLeaderError(this.node.leader));
    // A caller whose writes go one at a time gains nothing from waiting for others to batch with: its write starts
    // at once (and still takes along whatever else is waiting).
    if (opts.serial) queueMicrotask(() => this.#run());
    if (!this.#gathering) this.#schedule(); // one gathered goes in the turn under way
    return this.#proposals.wait(index, term, this.node.leader);
  }

  /**
   * Starts a membership change (raft/core.ts `changeConfig`: through a joint config when voters change) and
   * resolves once its config entry is applied here. Rejects with NotLeaderError off the leader, with
   * ConfigChangeError when the change cannot start now (another one under way, nothing of this term committed yet).
   */
  changeConfig(change: ConfigChange): Promise<R> {
    if (this.#stopped) return Promise.reject(new NotLeaderError(undefined, "stopped"));
    if (this.node.role !== "leader") return Promise.reject(new NotLeaderError(this.node.leader));
    const term = this.node.term;
    const started = this.node.changeConfig(change);
    if (!started.ok) return Promise.reject(new ConfigChangeError(started.reason));
    this.#schedule();
    return this.#proposals.wait(started.index, term, this.node.leader);
  }

  /**
   * Resolves once this node's state machine is at least as new as the cluster was when this was called
   * (ReadIndex): what it then reads is linearizable. Any node can: a follower asks its leader for the read index
   * and resolves once it has applied through it. Rejects with NotLeaderError when no leader is known, and with
   * TimeoutError when not done in time.
   */
  readBarrier(): Promise<void> {
    if (this.#stopped) return Promise.reject(new NotLeaderError(undefined, "stopped"));
    return this.#reads.begin();
  }

  /**
   * Calls `gather` at the start of each turn, before this node writes: what it proposes then goes in that turn's
   * write. With `wake()`, a caller gathering proposals (several into one entry) hands them over with no turn of the
   * event loop of its own.
   */
  beforeTurn(gather: () => void): void {
    this.#gatherers.push(gather);
  }

  /**
   * Asks for a turn soon (once per event-loop turn however often it is asked). `now`: in this turn's microtasks
   * instead, for a caller that expects nothing else to gather (one write at a time), so its write waits for no
   * turn of the event loop; while a turn is under way, it still waits for the next.
   */
  wake(now = false): void {
    // A stopped driver has no more turns: what was gathered is handed over now (and refused).
    if (this.#stopped) { for (const gather of this.#gatherers) gather(); }
    else if (now && !this.#running) queueMicrotask(() => this.#run());
    else this.#schedule();
  }

  /** Stops ticking, sending and applying; what is waiting is rejected. Does not close the transport or the store. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#wake.port1.close();
    this.#wake.port2.close();
    this.#failAll(new NotLeaderError(undefined, "stopped"));
  }

  #tick(): void {
    this.node.tick();
    this.#schedule();
    const now = performance.now();
    this.#proposals.expire(now);
    this.#reads.tick(now);
  }

  #schedule(): void {
    if (this.#woken || this.#stopped) return;
    this.#woken = true;
    this.#wake.port2.postMessage(null);
  }

  async #run(): Promise<void> {
    this.#woken = false;
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      this.#gathering = true;
      try {
        for (const gather of this.#gatherers) gather();
      } finally {
        this.#gathering = false;
      }
      if (this.#grouped) this.#handleAllNow();
      else while (this.node.hasReady() && !this.#stopped) await this.#handle(this.node.ready());
      await this.#compact();
    } catch (err) {
      this.stop();
      this.#opts.onFatal(err);
    } finally {
      this.#running = false;
    }
    const { node, stats } = this;
    if (stats.role === "leader" && node.role !== "leader") {
      // Deposed: reads it was confirming never will be (they ask the new leader at the next tick); proposals wait
      // for what the new leader's log says.
      this.#reads.deposed();
    }
    Object.assign(stats, {
      applied: this.#applied,
      term: node.term,
      role: node.role,
      leader: node.leader,
      followerReads: this.#reads.followerReads,
    });
  }

  async #handle(rd: Ready): Promise<void> {
    const { write, late } = this.#send(rd);
    if (write) {
      const start = performance.now();
      await this.#opts.store.persist(write);
      this.#wrote(write, performance.now() - start);
      this.#stored = this.#written;
    }
    for (const m of late) this.#opts.transport.send(m.to, m);
    this.#settleReady(rd);
  }

  /**
   * Handles every Ready there is in one transaction of the database the store shares with the state machine: the
   * entries stored and those they commit applied together (a lone voter's: one fsync for both). What depends on
   * the writes is sent once the transaction has committed.
   */
  #handleAllNow(): void {
    const { store, transport } = this.#opts;
    const late: Message[] = [];
    if (!this.node.hasReady()) return;
    this.#opts.transaction!(() => {
      while (this.node.hasReady() && !this.#stopped) {
        const rd = this.node.ready();
        const sent = this.#send(rd);
        if (sent.write) {
          // The leader's appends go out before its fsync, not after the transaction: the followers write meanwhile.
          transport.flush?.();
          const start = performance.now();
          store.persistNow!(sent.write);
          this.#wrote(sent.write, performance.now() - start);
        }
        late.push(...sent.late);
        this.#settleReady(rd);
      }
    });
    this.#stored = this.#written;
    for (const m of late) transport.send(m.to, m);
  }

  /**
   * Sends what a Ready's writes do not hold back and says what to store: a leader's appends need only its term on
   * disk (they go out first unless this Ready changes the term or vote); the rest must wait for the write.
   */
  #send(rd: Ready): { write?: StoreWrite; late: Message[] } {
    const hard = rd.hardState;
    const after = hard ?? this.#written;
    const sameTerm = after.term === this.#stored.term && after.vote === this.#stored.vote;
    const late: Message[] = [];
    for (const m of coalesce(rd.messages)) {
      if (sameTerm && leaderMessage(m)) this.#opts.transport.send(m.to, m);
      else late.push(m);
    }
    // A hard state that only moved the commit index is not written at all: the commit index is rebuilt after a
    // restart (from what the machine applied, and from the leader), and writing it would cost every write a page.
    const newTerm = hard !== undefined && (hard.term !== this.#written.term || hard.vote !== this.#written.vote);
    if (rd.snapshot === undefined && rd.entries.length === 0 && !newTerm) return { late };
    return { write: { snapshot: rd.snapshot, entries: rd.entries, ...(newTerm && { hardState: hard }) }, late };
  }

  #wrote(write: StoreWrite, ms: number): void {
    const { entries } = write;
    this.#stable = entries.length > 0 ? entries[entries.length - 1].index : write.snapshot?.index ?? this.#stable;
    this.stats.writeMs += ms;
    this.stats.fsyncs++;
    this.stats.entriesWritten += entries.length;
    if (write.hardState) this.#written = write.hardState;
  }

  /** After a Ready's writes: installs its snapshot, applies what it commits, confirms its reads, advances the core. */
  #settleReady(rd: Ready): void {
    if (rd.snapshot) {
      this.#opts.machine.restore(rd.snapshot.data);
      this.#applied = rd.snapshot.index;
      this.#proposals.settle(rd.snapshot.index, undefined, this.node.leader);
      this.stats.snapshotsInstalled++;
    }
    this.#applyEntries(rd.committed.filter((e) => e.index > this.#applied));
    this.#reads.confirmed(rd.reads);
    this.#reads.answer(this.#applied);
    this.node.advance(rd);
  }

  /** Takes a snapshot (compacting the log) once enough was applied since the last; stores one made meanwhile. */
  async #compact(): Promise<void> {
    const { machine } = this.#opts;
    const made = this.#compaction.takeMade();
    if (made && made.index > this.node.snapshotIndex && !this.#stopped) return await this.#saveSnapshot(made);
    if (this.#stopped || !this.#compaction.due(this.#applied - this.node.snapshotIndex)) return;
    if (!machine.snapshotAsync || this.#compaction.failed) {
      return await this.#saveSnapshot({ index: this.#applied, data: machine.snapshot() });
    }
    this.#compaction.making(machine.snapshotAsync(), () => this.#schedule());
  }

  async #saveSnapshot(taken: Taken): Promise<void> {
    await this.#opts.store.saveSnapshot(this.node.snapshot(taken.index, taken.data));
    this.#compaction.stored(taken.data.length);
    this.stats.fsyncs++;
    this.stats.snapshotsTaken++;
  }

  /**
   * Applies what committed since the last Ready at once, rather than after the write under way: a committed entry
   * is durable on a quorum and never changes, whether or not this node has stored it yet (the leader has: it
   * counts itself only for what it stored). Stops at what a snapshot not yet handed over replaced.
   */
  #applyCommitted(): void {
    const entries: Entry[] = [];
    // A machine that stores its applied index must not get ahead of the log on disk: after a crash it would be
    // applied past what the log holds. A follower's entries may commit before its own write of them is done.
    const upTo = this.#opts.machine.applied ? Math.min(this.node.commit, this.#stable) : this.node.commit;
    for (let i = this.#applied + 1; i <= upTo; i++) {
      const e = this.node.entryAt(i);
      if (!e) break;
      entries.push(e);
    }
    this.#applyEntries(entries);
    if (entries.length > 0) this.node.appliedTo(this.#applied);
  }

  #applyEntries(entries: Entry[]): void {
    if (entries.length === 0) return;
    const machine = this.#opts.machine;
    const results = machine.applyAll && entries.length > 1
      ? machine.applyAll(entries)
      : entries.map((e) => machine.apply(e));
    entries.forEach((e, i) => {
      this.#applied = e.index;
      this.#compaction.applied(e.data.length);
      this.#proposals.settle(e.index, { term: e.term, result: results[i] }, this.node.leader);
    });
  }

  #failAll(err: Error): void {
    this.#proposals.failAll(err);
    this.#reads.failAll(err);
  }
}
