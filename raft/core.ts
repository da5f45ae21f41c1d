/**
 * The Raft core (etcd-io/raft's shape): no I/O, no clock, no randomness of its
 * own. Time is `tick()`; messages come in through `step()`; what must be
 * persisted, sent and applied comes out of `ready()`. The driver persists the
 * snapshot, entries and hard state, then sends the messages, then applies the
 * committed entries, then calls `advance()`: nothing is acknowledged before it
 * is stored. The core may be stepped while a Ready is being persisted; take
 * the next Ready only after advancing the previous one.
 *
 * Leader election with randomized timeouts, pre-vote and check-quorum
 * together, batched log replication with a no-op per term, ReadIndex reads on
 * any node (a follower asks its leader for the index, raft/read_index.ts),
 * leadership transfer, membership changes by joint consensus (raft/config.ts),
 * and snapshots: the driver hands in its state machine's state at an applied
 * index, the log is compacted, and a follower that needs compacted entries is
 * sent the snapshot instead.
 */

import { encodeConfig, hasQuorum, isJoint, leaveJoint, members, planChange } from "./config.ts";
import { mayCampaign, upToDate, voteRequests } from "./election.ts";
import { RaftLog } from "./log.ts";
import { Outbox } from "./outbox.ts";
import type { Message, Ready } from "./messages.ts";
import type { ChangeResult, ConfigChange, RaftOptions, Role } from "./options.ts";
import { ReadIndex } from "./read_index.ts";
import { Replication } from "./replication.ts";
import type { Config, Entry, HardState, Snapshot } from "./types.ts";

export type { Message, Ready };
export type { ChangeResult, ConfigChange, RaftBug, RaftOptions, Role } from "./options.ts";

type AppendLike = { from: string; round?: number };

export class RaftNode {
  readonly id: string;
  role: Role = "follower";
  term = 0;
  votedFor?: string;
  leader?: string;
  commit = 0;
  readonly #log: RaftLog;
  readonly #outbox = new Outbox();
  /** The latest snapshot (taken here or installed): what a follower that needs compacted entries is sent. */
  #snapshot?: Snapshot;
  readonly #opts: RaftOptions;
  #elapsed = 0;
  #timeout = 0;
  #votes = new Set<string>();
  readonly #replication: Replication;
  /** A follower this leader is handing over to, and the ticks left to do it. */
  #transferee?: string;
  #transferTicks = 0;
  readonly #readIndex: ReadIndex;
  #quorumElapsed = 0;

  constructor(opts: RaftOptions) {
    this.id = opts.id;
    this.#opts = opts;
    this.#readIndex = new ReadIndex(opts.id, this.#outbox);
    const voters = [...new Set(opts.voters)].sort();
    const learners = [...new Set(opts.learners ?? [])].filter((l) => !voters.includes(l)).sort();
    const snap = opts.restore?.snapshot;
    this.#log = new RaftLog(snap ?? { index: 0, term: 0, config: { voters, learners } });
    if (opts.restore) {
      this.term = opts.restore.hardState.term;
      this.votedFor = opts.restore.hardState.vote;
      this.#log.append(opts.restore.entries.filter((e) => e.index > (snap?.index ?? 0)));
      // Applied durably means committed; never past what the log holds (a store must not apply what it lacks).
      const applied = Math.min(opts.restore.applied ?? 0, this.#log.lastIndex);
      this.commit = Math.max(opts.restore.hardState.commit, snap?.index ?? 0, applied);
      this.#outbox.applied = Math.max(snap?.index ?? 0, applied);
      this.#snapshot = snap;
    }
    this.#replication = new Replication(this, this.#log, (m) => this.#send(m), opts);
    this.#resetTimeout();
  }

  /** The entries held in memory: those after the latest snapshot (`log[i]` holds index `snapshotIndex + i + 1`). */
  get log(): readonly Entry[] {
    return this.#log.entries;
  }

  get lastIndex(): number {
    return this.#log.lastIndex;
  }

  /** Index of the latest snapshot (0 if none): entries up to it are compacted away. */
  get snapshotIndex(): number {
    return this.#log.snapshotIndex;
  }

  /** The config in force (that of the latest config entry appended, committed or not). */
  get config(): Config {
    return this.#log.config;
  }

  /** The config in force at the commit index (the latest this node knows to be committed). */
  get committedConfig(): Config {
    return this.#log.configAt(this.commit);
  }

  /** The term at `index`; -1 when compacted away or past the end. */
  termAt(index: number): number {
    return this.#log.term(index) ?? -1;
  }

  /** The entry at `index`, if held. */
  entryAt(index: number): Entry | undefined {
    return this.#log.entry(index);
  }

  /** The latest snapshot, taken here or installed. */
  get latestSnapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** The leader's read round under way (0 when none), echoed by its followers' answers. */
  get readRound(): number {
    return this.#readIndex.round;
  }

  tick(): void {
    if (this.role === "leader") {
      if (this.#transferee !== undefined && --this.#transferTicks <= 0) this.#transferee = undefined;
      // Check-quorum: a leader that has not heard from a quorum in an election timeout steps down.
      if (++this.#quorumElapsed >= this.#opts.electionTicks) {
        this.#quorumElapsed = 0;
        const active = this.#replication.takeActive();
        if (!this.#quorum((p) => p === this.id || active.has(p))) return this.#becomeFollower(this.term);
      }
      if (++this.#elapsed >= this.#opts.heartbeatTicks) {
        this.#elapsed = 0;
        for (const peer of this.#peers()) this.#replication.send(peer, true);
      }
      return;
    }
    if (++this.#elapsed >= this.#timeout && mayCampaign(this.#log, this.commit, this.id)) this.#preCampaign();
  }

  /**
   * Hands leadership to `to`: once it has the whole log, it is told to
   * campaign at once. Proposals pause meanwhile; after an election timeout
   * without success the transfer is abandoned.
   */
  transferLeadership(to: string): boolean {
    if (this.role !== "leader" || to === this.id || !this.config.voters.includes(to)) return false;
    this.#transferee = to;
    this.#transferTicks = this.#opts.electionTicks;
    if (this.#replication.match(to) >= this.lastIndex) {
      this.#send({ type: "timeout-now", from: this.id, to, term: this.term });
    } else this.#replication.send(to, false);
    return true;
  }

  /**
   * Appends `data` if this node leads; returns its index, or undefined (ask the leader).
   * `session` tags a client's write so the state machine applies a retry of it once (raft/session.ts).
   */
  propose(data: Uint8Array, session?: { client: string; seq: number }): number | undefined {
    if (this.role !== "leader" || this.#transferee !== undefined) return undefined;
    return this.#replicate({ kind: "normal", data, ...(session && { client: session.client, seq: session.seq }) });
  }

  /**
   * Starts moving to the config `change` names: through a joint config when the
   * voters change (C_new follows by itself once it commits), directly when only
   * learners do. One change at a time.
   */
  changeConfig(change: ConfigChange): ChangeResult {
    const next = this.role !== "leader"
      ? "not the leader"
      : this.#transferee !== undefined
      ? "a leadership transfer is under way"
      : this.termAt(this.commit) !== this.term
      ? "nothing of this leader's term is committed yet"
      : planChange(this.config, this.#log.configIndex, this.commit, change);
    if (typeof next === "string") return { ok: false, reason: next };
    return { ok: true, index: this.#replicate({ kind: "config", data: encodeConfig(next) }) };
  }

  /**
   * Starts a linearizable read: the leader's commit index now, in `ready().reads` once a quorum confirms it still
   * leads. False on a leader with nothing of its term committed yet, or on a follower that knows no leader. A
   * follower asks its leader; a request lost (or a leader deposed) releases nothing: ask again with the same `ctx`.
   */
  readIndex(ctx: string): boolean {
    if (this.role !== "leader") {
      if (this.leader === undefined) return false;
      if (this.#opts.bug === "follower-read-local-commit") this.#outbox.reads.push({ ctx, index: this.commit });
      else this.#send({ type: "read-index", from: this.id, to: this.leader, term: this.term, ctx });
      return true;
    }
    if (this.termAt(this.commit) !== this.term) return false;
    this.#startRead(ctx, this.id);
    return true;
  }

  /**
   * The driver's state machine, having applied through `index`, is `data`:
   * the log is compacted up to there. Persist the result (LogStore.saveSnapshot).
   */
  snapshot(index: number, data: Uint8Array): Snapshot {
    const applied = this.#outbox.applied;
    if (index > applied) throw new RangeError(`cannot snapshot at ${index}: applied only to ${applied}`);
    if (index <= this.#log.snapshotIndex) throw new RangeError(`cannot snapshot at ${index}: compacted already`);
    const snap = { index, term: this.termAt(index), config: this.#log.configAt(index), data };
    this.#log.compact(index);
    this.#snapshot = snap;
    return snap;
  }

  step(m: Message): void {
    if (m.type === "pre-vote") return this.#onPreVote(m);
    if (m.type === "pre-vote-response") return this.#onPreVoteResponse(m);
    const fromLeader = m.type === "append" || m.type === "snapshot";
    if (m.term > this.term) {
      // Leader stickiness: while this node hears from a leader, a vote request does not move its term
      // (unless that leader asked for the election, by a transfer).
      if (m.type === "vote" && this.#inLease() && !m.transfer) return;
      this.#becomeFollower(m.term, fromLeader ? m.from : undefined);
    }
    if (m.term < this.term) {
      // Answering a stale leader with this term makes it step down: with leader stickiness (and pre-vote), nothing
      // else would ever bring the cluster up to this term, and this node would be shut out for good (the stuck
      // peer of etcd-io/etcd#5468).
      if (fromLeader && this.#opts.bug !== "ignore-stale-term-append") this.#answerAppend(m, false, this.lastIndex);
      if (m.type === "vote") {
        this.#send({ type: "vote-response", from: this.id, to: m.from, term: this.term, granted: false });
      }
      return;
    }
    switch (m.type) {
      case "timeout-now":
        if (this.role === "follower" && mayCampaign(this.#log, this.commit, this.id)) this.#campaign(true);
        return;
      case "vote":
        return this.#onVote(m);
      case "vote-response":
        return this.#onVoteResponse(m);
      case "append":
        return this.#onAppend(m);
      case "snapshot":
        return this.#onSnapshot(m);
      case "append-response":
        return this.#onAppendResponse(m);
      case "read-index": // dropped unless this node leads and may serve reads: the follower asks again
        if (this.role === "leader" && this.termAt(this.commit) === this.term) this.#startRead(m.ctx, m.from);
        return;
      case "read-index-response":
        return void this.#outbox.reads.push({ ctx: m.ctx, index: m.index });
    }
  }

  /** Whether `ready()` has anything to persist, send or apply (cheap: allocates only to send waiting appends). */
  hasReady(): boolean {
    this.#replication.flush(this.role === "leader");
    return this.#outbox.has(this.#log, this.commit);
  }

  /**
   * The driver applied committed entries through `index` outside a Ready (reading them with `entryAt`, so as not
   * to wait for a write under way): the next Ready does not hand them over again, and a snapshot may be taken there.
   */
  appliedTo(index: number): void {
    if (index > this.commit) throw new RangeError(`cannot have applied ${index}: committed only to ${this.commit}`);
    this.#outbox.applied = Math.max(this.#outbox.applied, index);
  }

  ready(): Ready {
    this.#replication.flush(this.role === "leader");
    return this.#outbox.ready(this.#log, this.#hardState(), this.commit);
  }

  /**
   * The driver has persisted, sent and applied what `ready` gave (the core may have moved on since). This can make
   * more ready (a leader's entries, now stored, may commit): check `hasReady()` again before waiting for input.
   */
  advance(ready: Ready): void {
    this.#outbox.advance(ready, this.#log, this.#hardState());
    if (this.role === "leader") this.#maybeCommit(); // what this leader just stored may commit now
  }

  #hardState(): HardState {
    const vote = this.votedFor !== undefined && this.#opts.bug !== "vote-not-persisted";
    return { term: this.term, ...(vote && { vote: this.votedFor }), commit: this.commit };
  }

  #onVote(m: Extract<Message, { type: "vote" }>): void {
    const free = this.votedFor === undefined || this.votedFor === m.from;
    const current = upToDate(this.#log, m.lastIndex, m.lastTerm) || this.#opts.bug === "vote-without-log-check";
    const granted = free && current && this.role !== "leader";
    if (granted) {
      this.votedFor = m.from;
      this.#outbox.hardDirty = true;
      this.#elapsed = 0;
    }
    this.#send({ type: "vote-response", from: this.id, to: m.from, term: this.term, granted });
  }

  /** True while this node leads, or heard from its leader within the minimum election timeout. */
  #inLease(): boolean {
    if (this.role === "leader") return true; // check-quorum steps it down when that is no longer so
    return this.leader !== undefined && this.#elapsed < this.#opts.electionTicks;
  }

  #onPreVote(m: Extract<Message, { type: "pre-vote" }>): void {
    const granted = m.term > this.term && !this.#inLease() && this.role !== "leader" &&
      (upToDate(this.#log, m.lastIndex, m.lastTerm) || this.#opts.bug === "vote-without-log-check");
    this.#send({ type: "pre-vote-response", from: this.id, to: m.from, term: granted ? m.term : this.term, granted });
  }

  #onPreVoteResponse(m: Extract<Message, { type: "pre-vote-response" }>): void {
    if (!m.granted) {
      if (m.term > this.term) this.#becomeFollower(m.term);
      return;
    }
    if (this.role !== "pre-candidate" || m.term !== this.term + 1) return;
    this.#votes.add(m.from);
    if (this.#quorum((p) => this.#votes.has(p))) this.#campaign();
  }

  /** Asks for pre-votes first: a real campaign (and a new term) only if a quorum would vote. */
  #preCampaign(): void {
    this.role = "pre-candidate";
    this.leader = undefined;
    this.#votes = new Set([this.id]);
    this.#elapsed = 0;
    this.#resetTimeout();
    if (this.#quorum((p) => this.#votes.has(p))) return this.#campaign();
    this.#outbox.messages.push(...voteRequests("pre-vote", this.id, this.term + 1, this.#log, false));
  }

  #onVoteResponse(m: Extract<Message, { type: "vote-response" }>): void {
    if (this.role !== "candidate" || !m.granted) return;
    this.#votes.add(m.from);
    if (this.#quorum((p) => this.#votes.has(p))) this.#becomeLeader();
  }

  #onAppend(m: Extract<Message, { type: "append" }>): void {
    this.#follow(m.from);
    // Below the snapshot everything is committed, so it matches the leader: an append that ends there is answered
    // with how far this node has it; one that runs past it is merged from the snapshot on.
    if (m.prevIndex + m.entries.length <= this.#log.snapshotIndex) return this.#answerAppend(m, true, this.commit);
    const merged = this.#log.merge(m.prevIndex, m.prevTerm, m.entries, this.#opts.bug === "truncate-on-stale-append");
    // A rejection still acknowledges this leader (its read round counts).
    if (!merged) return this.#answerAppend(m, false, Math.min(m.prevIndex - 1, this.lastIndex));
    const { verified, changedFrom } = merged;
    if (changedFrom !== undefined) this.#outbox.appended(changedFrom);
    // Commit only what this message proved matches the leader's log.
    const commit = Math.min(m.commit, this.#opts.bug === "commit-past-verified" ? this.lastIndex : verified);
    if (commit > this.commit) {
      this.commit = commit;
      this.#outbox.hardDirty = true;
    }
    this.#answerAppend(m, true, verified);
  }

  #onSnapshot(m: Extract<Message, { type: "snapshot" }>): void {
    this.#follow(m.from);
    const s = m.snapshot;
    if (s.index <= this.commit) return this.#answerAppend(m, true, this.commit);
    if (this.termAt(s.index) === s.term) {
      // The log continues the snapshot: everything up to it is committed; keep what follows.
      this.commit = s.index;
    } else {
      this.#log.reset({ index: s.index, term: s.term, config: s.config });
      this.#snapshot = s;
      this.commit = s.index;
      this.#outbox.installed(s);
    }
    this.#outbox.hardDirty = true;
    this.#answerAppend(m, true, s.index);
  }

  #follow(leader: string): void {
    this.role = "follower";
    this.leader = leader;
    this.#elapsed = 0;
  }

  /** Answers an append (or snapshot), echoing its read round (ReadIndex). */
  #answerAppend(m: AppendLike, success: boolean, index: number): void {
    const round = m.round !== undefined ? { round: m.round } : {};
    this.#send({ type: "append-response", from: this.id, to: m.from, term: this.term, success, index, ...round });
  }

  #onAppendResponse(m: Extract<Message, { type: "append-response" }>): void {
    if (this.role !== "leader") return;
    if (m.round !== undefined) {
      this.#readIndex.ack(m.from, m.round);
      this.#releaseReads();
    }
    this.#replication.answered(m.from, m.success, m.index);
    if (!m.success) return;
    this.#maybeCommit();
    if (this.role !== "leader") return;
    if (this.#replication.match(m.from) < this.lastIndex) this.#replication.send(m.from, false);
    else if (m.from === this.#transferee) {
      this.#send({ type: "timeout-now", from: this.id, to: m.from, term: this.term });
    }
  }

  /** A read round for `ctx`, asked by `from` (this node or a follower), at the commit index now. */
  #startRead(ctx: string, from: string): void {
    this.#readIndex.start(ctx, this.commit, from);
    this.#releaseReads();
    for (const peer of this.#peers()) this.#replication.send(peer, true);
  }

  #releaseReads(): void {
    const unconfirmed = this.#opts.bug === "read-without-quorum";
    this.#readIndex.release(this.term, (acks) => unconfirmed || this.#quorum((p) => acks.has(p)));
  }

  #campaign(transfer = false): void {
    this.role = "candidate";
    this.term++;
    this.votedFor = this.id;
    this.leader = undefined;
    this.#outbox.hardDirty = true;
    this.#votes = new Set([this.id]);
    this.#elapsed = 0;
    this.#resetTimeout();
    if (this.#quorum((p) => this.#votes.has(p))) return this.#becomeLeader();
    this.#outbox.messages.push(...voteRequests("vote", this.id, this.term, this.#log, transfer));
  }

  #becomeFollower(term: number, leader?: string): void {
    this.#readIndex.clear();
    this.#transferee = undefined;
    this.role = "follower";
    // A vote stands for its whole term, even when a leader steps down within it.
    if (term !== this.term) this.votedFor = undefined;
    this.term = term;
    this.leader = leader;
    this.#outbox.hardDirty = true;
    this.#elapsed = 0;
    this.#resetTimeout();
  }

  #becomeLeader(): void {
    this.role = "leader";
    this.leader = this.id;
    this.#elapsed = 0;
    this.#quorumElapsed = 0;
    this.#replication.reset();
    // A no-op of the new term: entries of earlier terms commit once it does.
    this.#replicate({ kind: "noop", data: new Uint8Array() });
  }

  /** Appends one entry of this term as leader (its peers get it with the next Ready), and commits what can be. */
  #replicate(e: Omit<Entry, "index" | "term">): number {
    const index = this.lastIndex + 1;
    this.#log.append([{ ...e, index, term: this.term }]);
    this.#outbox.appended(index);
    this.#replication.appended(this.#peers(), index);
    this.#maybeCommit();
    return index;
  }

  #maybeCommit(): void {
    const bug = this.#opts.bug === "joint-quorum-union" ? this.#opts.bug : undefined;
    // This node counts only for what it has stored: committed means durable on a quorum.
    const stored = this.#outbox.stored(this.#log);
    const index = this.#replication.quorumIndex(this.config, stored, bug);
    if (index <= this.commit) return;
    if (this.termAt(index) !== this.term && this.#opts.bug !== "commit-old-term") return;
    this.commit = index;
    this.#outbox.hardDirty = true;
    if (this.#log.configIndex > this.commit) return;
    // The config in force is committed: a joint one is left by appending C_new; a leader outside C_new steps down.
    if (isJoint(this.config)) this.#replicate({ kind: "config", data: encodeConfig(leaveJoint(this.config)) });
    else if (!this.config.voters.includes(this.id)) this.#becomeFollower(this.term);
  }

  #quorum(yes: (id: string) => boolean): boolean {
    return hasQuorum(this.config, yes, this.#opts.bug === "joint-quorum-union" ? this.#opts.bug : undefined);
  }

  /** Everyone this node replicates to: every other member. */
  #peers(): string[] {
    return members(this.config).filter((p) => p !== this.id);
  }

  #send(m: Message): void {
    this.#outbox.messages.push(m);
  }

  #resetTimeout(): void {
    this.#timeout = this.#opts.electionTicks + Math.floor(this.#opts.random() * this.#opts.electionTicks);
  }
}
