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
 * together, batched log replication with a no-op per term, ReadIndex reads,
 * leadership transfer, membership changes by joint consensus (raft/config.ts),
 * and snapshots: the driver hands in its state machine's state at an applied
 * index, the log is compacted, and a follower that needs compacted entries is
 * sent the snapshot instead.
 */

import {
  encodeConfig,
  hasQuorum,
  isJoint,
  isVoter,
  leaveJoint,
  members,
  quorumIndex,
  sameConfig,
  startChange,
} from "./config.ts";
import { RaftLog } from "./log.ts";
import type { Message, Ready } from "./messages.ts";
import type { Config, Entry, HardState, Snapshot } from "./types.ts";

export type { Message, Ready };

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Test-only: classic bugs put back, to prove the simulator catches each (raft/sim_test.ts). */
export type RaftBug =
  | "vote-without-log-check"
  | "commit-old-term"
  | "vote-not-persisted"
  | "commit-past-verified"
  | "truncate-on-stale-append"
  | "ignore-stale-term-append"
  | "joint-quorum-union"
  | "read-without-quorum";

export interface RaftOptions {
  id: string;
  /** Every voter, this node included: the initial config (a snapshot's or a config entry's overrides it). */
  voters: string[];
  /** Members that receive the log but do not vote or count for quorum (catching up, or read replicas). */
  learners?: string[];
  /** Ticks without a leader before campaigning (randomized up to twice this). */
  electionTicks: number;
  heartbeatTicks: number;
  /** Uniform in [0, 1): the only randomness, injected. */
  random: () => number;
  /** Most entries in one append message. */
  maxBatch?: number;
  /** What was persisted before a restart; the driver loads `snapshot` into its state machine itself. */
  restore?: { hardState: HardState; entries: Entry[]; snapshot?: Snapshot };
  bug?: RaftBug;
}

/** A membership change: the voters and learners wanted. */
export interface ConfigChange {
  voters: string[];
  learners?: string[];
}

export type ChangeResult = { ok: true; index: number } | { ok: false; reason: string };

type AppendLike = { from: string; round?: number };

export class RaftNode {
  readonly id: string;
  role: Role = "follower";
  term = 0;
  votedFor?: string;
  leader?: string;
  commit = 0;
  readonly #log: RaftLog;
  #applied = 0;
  /** The latest snapshot (taken here or installed): what a follower that needs compacted entries is sent. */
  #snapshot?: Snapshot;
  /** An installed snapshot the driver has not been handed yet. */
  #snapshotToApply?: Snapshot;
  readonly #opts: RaftOptions;
  #elapsed = 0;
  #timeout = 0;
  #votes = new Set<string>();
  #next = new Map<string, number>();
  #match = new Map<string, number>();
  #out: Message[] = [];
  /** A follower this leader is handing over to, and the ticks left to do it. */
  #transferee?: string;
  #transferTicks = 0;
  /** Reads waiting for a quorum to confirm this leader, oldest first. */
  #pendingReads: { ctx: string; index: number; round: number; acks: Set<string> }[] = [];
  #readRound = 0;
  #reads: { ctx: string; index: number }[] = [];
  /** Peers heard from since the leader's last quorum check. */
  #active = new Set<string>();
  #quorumElapsed = 0;
  #unstableFrom = Infinity;
  #hardDirty = false;

  constructor(opts: RaftOptions) {
    this.id = opts.id;
    this.#opts = opts;
    const voters = [...new Set(opts.voters)].sort();
    const initial: Config = { voters, learners: [...new Set(opts.learners ?? [])].filter((l) => !voters.includes(l)) };
    const snap = opts.restore?.snapshot;
    this.#log = new RaftLog(
      snap ? { index: snap.index, term: snap.term, config: snap.config } : {
        index: 0,
        term: 0,
        config: { ...initial, learners: initial.learners.sort() },
      },
    );
    if (opts.restore) {
      this.term = opts.restore.hardState.term;
      this.votedFor = opts.restore.hardState.vote;
      this.#log.append(opts.restore.entries.filter((e) => e.index > (snap?.index ?? 0)));
      this.commit = Math.max(opts.restore.hardState.commit, snap?.index ?? 0);
      this.#applied = snap?.index ?? 0;
      this.#snapshot = snap;
    }
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

  tick(): void {
    if (this.role === "leader") {
      if (this.#transferee !== undefined && --this.#transferTicks <= 0) this.#transferee = undefined;
      // Check-quorum: a leader that has not heard from a quorum in an election timeout steps down.
      if (++this.#quorumElapsed >= this.#opts.electionTicks) {
        this.#quorumElapsed = 0;
        if (!this.#quorum((p) => p === this.id || this.#active.has(p))) return this.#becomeFollower(this.term);
        this.#active.clear();
      }
      if (++this.#elapsed >= this.#opts.heartbeatTicks) {
        this.#elapsed = 0;
        for (const peer of this.#peers()) this.#sendAppend(peer, true);
      }
      return;
    }
    if (++this.#elapsed >= this.#timeout && this.#promotable()) this.#preCampaign();
  }

  /**
   * Learners and nodes outside the config only follow. A voter of the committed config still campaigns when an
   * uncommitted config drops it: otherwise, if the only voters left were behind, no one could finish the change.
   */
  #promotable(): boolean {
    return isVoter(this.config, this.id) || isVoter(this.committedConfig, this.id);
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
    if ((this.#match.get(to) ?? 0) >= this.lastIndex) {
      this.#send({ type: "timeout-now", from: this.id, to, term: this.term });
    } else this.#sendAppend(to, false);
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
    const refuse = (reason: string): ChangeResult => ({ ok: false, reason });
    if (this.role !== "leader") return refuse("not the leader");
    if (this.#transferee !== undefined) return refuse("a leadership transfer is under way");
    if (this.termAt(this.commit) !== this.term) return refuse("nothing of this leader's term is committed yet");
    if (this.#log.configIndex > this.commit) {
      return refuse(`the config change at index ${this.#log.configIndex} is not committed yet`);
    }
    if (isJoint(this.config)) return refuse("the joint config has not been left yet");
    if (change.voters.length === 0) return refuse("a config needs at least one voter");
    const next = startChange(this.config, change);
    if (sameConfig(next, this.config)) return refuse("the config is already that");
    return { ok: true, index: this.#replicate({ kind: "config", data: encodeConfig(next) }) };
  }

  /**
   * Starts a linearizable read: the commit index now, released in `ready().reads`
   * once a quorum confirms this node still leads. False when this node does not
   * lead, or has not yet committed an entry of its term (ask again).
   */
  readIndex(ctx: string): boolean {
    if (this.role !== "leader" || this.termAt(this.commit) !== this.term) return false;
    const round = ++this.#readRound;
    this.#pendingReads.push({ ctx, index: this.commit, round, acks: new Set([this.id]) });
    this.#releaseReads();
    for (const peer of this.#peers()) this.#sendAppend(peer, true);
    return true;
  }

  /**
   * The driver's state machine, having applied through `index`, is `data`:
   * the log is compacted up to there. Persist the result (LogStore.saveSnapshot).
   */
  snapshot(index: number, data: Uint8Array): Snapshot {
    if (index > this.#applied) throw new RangeError(`cannot snapshot at ${index}: applied only to ${this.#applied}`);
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
      // Answering a stale leader with this term makes it step down: with pre-vote and leader stickiness, nothing
      // else would ever bring it up to this term, and this node would be shut out for good (etcd-io/raft's
      // "PreVote + CheckQuorum" livelock).
      if (fromLeader && this.#opts.bug !== "ignore-stale-term-append") this.#answerAppend(m, false, this.lastIndex);
      if (m.type === "vote") {
        this.#send({ type: "vote-response", from: this.id, to: m.from, term: this.term, granted: false });
      }
      return;
    }
    switch (m.type) {
      case "timeout-now":
        if (this.role === "follower" && this.#promotable()) this.#campaign(true);
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
    }
  }

  /** Whether `ready()` has anything to persist, send or apply (cheap: no allocation). */
  hasReady(): boolean {
    return this.#snapshotToApply !== undefined || this.#out.length > 0 || this.#reads.length > 0 || this.#hardDirty ||
      this.#unstableFrom <= this.lastIndex || this.commit > this.#applied;
  }

  ready(): Ready {
    const from = Math.max(this.#unstableFrom, this.#log.firstIndex);
    return {
      ...(this.#snapshotToApply && { snapshot: this.#snapshotToApply }),
      entries: from <= this.lastIndex ? this.#log.slice(from, this.lastIndex + 1) : [],
      ...(this.#hardDirty && { hardState: this.#hardState() }),
      messages: [...this.#out],
      committed: this.#log.slice(this.#applied + 1, this.commit + 1),
      reads: [...this.#reads],
    };
  }

  /** The driver has persisted, sent and applied what `ready` gave (the core may have moved on since). */
  advance(ready: Ready): void {
    this.#out = this.#out.slice(ready.messages.length);
    this.#reads = this.#reads.slice(ready.reads.length);
    const last = ready.entries.at(-1);
    // Unless a conflict truncated the log at or below it since, everything up to the last entry given is stored.
    if (last && this.#log.term(last.index) === last.term) this.#unstableFrom = last.index + 1;
    if (ready.hardState && sameHardState(ready.hardState, this.#hardState())) this.#hardDirty = false;
    const applied = ready.committed.at(-1)?.index ?? 0;
    if (applied > this.#applied) this.#applied = applied;
    if (ready.snapshot === this.#snapshotToApply) this.#snapshotToApply = undefined;
    if (this.role === "leader") this.#maybeCommit();
  }

  #hardState(): HardState {
    const vote = this.votedFor !== undefined && this.#opts.bug !== "vote-not-persisted";
    return { term: this.term, ...(vote && { vote: this.votedFor }), commit: this.commit };
  }

  #onVote(m: Extract<Message, { type: "vote" }>): void {
    const free = this.votedFor === undefined || this.votedFor === m.from;
    const upToDate = this.#upToDate(m.lastIndex, m.lastTerm) || this.#opts.bug === "vote-without-log-check";
    const granted = free && upToDate && this.role !== "leader";
    if (granted) {
      this.votedFor = m.from;
      this.#hardDirty = true;
      this.#elapsed = 0;
    }
    this.#send({ type: "vote-response", from: this.id, to: m.from, term: this.term, granted });
  }

  /** True while a leader was heard from within the minimum election timeout. */
  #inLease(): boolean {
    return this.leader !== undefined && this.leader !== this.id && this.#elapsed < this.#opts.electionTicks;
  }

  #upToDate(lastIndex: number, lastTerm: number): boolean {
    const mine = this.termAt(this.lastIndex);
    return lastTerm > mine || (lastTerm === mine && lastIndex >= this.lastIndex);
  }

  #onPreVote(m: Extract<Message, { type: "pre-vote" }>): void {
    const granted = m.term > this.term && !this.#inLease() && this.role !== "leader" &&
      (this.#upToDate(m.lastIndex, m.lastTerm) || this.#opts.bug === "vote-without-log-check");
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
    this.#askVotes("pre-vote", this.term + 1, false);
  }

  /** Sends a (pre-)vote request for `term` to every other voter. */
  #askVotes(type: "vote" | "pre-vote", term: number, transfer: boolean): void {
    const lastTerm = this.termAt(this.lastIndex);
    for (const peer of members(this.config).filter((p) => p !== this.id && isVoter(this.config, p))) {
      this.#send({
        type,
        from: this.id,
        to: peer,
        term,
        lastIndex: this.lastIndex,
        lastTerm,
        ...(transfer && { transfer }),
      });
    }
  }

  #onVoteResponse(m: Extract<Message, { type: "vote-response" }>): void {
    if (this.role !== "candidate" || !m.granted) return;
    this.#votes.add(m.from);
    if (this.#quorum((p) => this.#votes.has(p))) this.#becomeLeader();
  }

  #onAppend(m: Extract<Message, { type: "append" }>): void {
    this.#follow(m.from);
    // Below the snapshot everything is committed, so it matches the leader: say how far this node has it.
    if (m.prevIndex < this.#log.snapshotIndex) return this.#answerAppend(m, true, this.commit);
    if (m.prevIndex > this.lastIndex || this.termAt(m.prevIndex) !== m.prevTerm) {
      // A rejection still acknowledges this leader (its read round counts).
      return this.#answerAppend(m, false, Math.min(m.prevIndex - 1, this.lastIndex));
    }
    // Only a conflict truncates: a stale (reordered) append must not cut entries this node already acknowledged.
    const conflict = m.entries.findIndex((e) => this.termAt(e.index) !== e.term);
    if (conflict >= 0) this.#append(m.entries.slice(conflict));
    const verified = m.prevIndex + m.entries.length;
    if (conflict < 0 && this.#opts.bug === "truncate-on-stale-append") {
      this.#log.truncateAfter(verified);
      this.#unstableFrom = Math.min(this.#unstableFrom, verified + 1);
    }
    // Commit only what this message proved matches the leader's log.
    const commit = Math.min(m.commit, this.#opts.bug === "commit-past-verified" ? this.lastIndex : verified);
    if (commit > this.commit) {
      this.commit = commit;
      this.#hardDirty = true;
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
      this.#snapshot = this.#snapshotToApply = s;
      this.commit = this.#applied = s.index;
      this.#unstableFrom = Infinity;
    }
    this.#hardDirty = true;
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
    this.#active.add(m.from);
    if (m.round !== undefined) {
      for (const r of this.#pendingReads) if (r.round <= m.round) r.acks.add(m.from);
      this.#releaseReads();
    }
    if (m.success) {
      if (m.index > (this.#match.get(m.from) ?? 0)) this.#match.set(m.from, m.index);
      this.#next.set(m.from, Math.max(this.#next.get(m.from) ?? 1, m.index + 1));
      this.#maybeCommit();
      if (this.role !== "leader") return;
      if ((this.#next.get(m.from) ?? 1) <= this.lastIndex) this.#sendAppend(m.from, false);
      else if (m.from === this.#transferee) {
        this.#send({ type: "timeout-now", from: this.id, to: m.from, term: this.term });
      }
    } else {
      this.#next.set(m.from, Math.max(1, Math.min((this.#next.get(m.from) ?? 1) - 1, m.index + 1)));
      this.#sendAppend(m.from, false);
    }
  }

  #releaseReads(): void {
    while (
      this.#pendingReads.length > 0 &&
      (this.#quorum((p) => this.#pendingReads[0].acks.has(p)) || this.#opts.bug === "read-without-quorum")
    ) {
      const r = this.#pendingReads.shift()!;
      this.#reads.push({ ctx: r.ctx, index: r.index });
    }
  }

  #campaign(transfer = false): void {
    this.role = "candidate";
    this.term++;
    this.votedFor = this.id;
    this.leader = undefined;
    this.#hardDirty = true;
    this.#votes = new Set([this.id]);
    this.#elapsed = 0;
    this.#resetTimeout();
    if (this.#quorum((p) => this.#votes.has(p))) return this.#becomeLeader();
    this.#askVotes("vote", this.term, transfer);
  }

  #becomeFollower(term: number, leader?: string): void {
    this.#pendingReads = []; // not confirmed: the clients ask again
    this.#transferee = undefined;
    this.role = "follower";
    // A vote stands for its whole term, even when a leader steps down within it.
    if (term !== this.term) this.votedFor = undefined;
    this.term = term;
    this.leader = leader;
    this.#hardDirty = true;
    this.#elapsed = 0;
    this.#resetTimeout();
  }

  #becomeLeader(): void {
    this.role = "leader";
    this.leader = this.id;
    this.#elapsed = 0;
    this.#quorumElapsed = 0;
    this.#active.clear();
    this.#next.clear();
    this.#match.clear();
    // A no-op of the new term: entries of earlier terms commit once it does.
    this.#replicate({ kind: "noop", data: new Uint8Array() });
  }

  /** Appends one entry of this term as leader, sends it, and commits what can be. */
  #replicate(e: Omit<Entry, "index" | "term">): number {
    const index = this.lastIndex + 1;
    this.#append([{ ...e, index, term: this.term }]);
    for (const peer of this.#peers()) {
      if (!this.#next.has(peer)) this.#next.set(peer, index); // a new leader's or a new member's first guess
      this.#sendAppend(peer, false);
    }
    this.#maybeCommit();
    return index;
  }

  #append(entries: Entry[]): void {
    this.#log.append(entries);
    this.#unstableFrom = Math.min(this.#unstableFrom, entries[0].index);
  }

  #sendAppend(to: string, heartbeat: boolean): void {
    const next = this.#next.get(to) ?? this.lastIndex + 1;
    const round = this.#readRound > 0 ? { round: this.#readRound } : {};
    if (next <= this.#log.snapshotIndex) {
      // The entries it needs are compacted away: send the snapshot, and go on from there (a loss shows as a rejection).
      this.#next.set(to, this.#snapshot!.index + 1);
      this.#send({ type: "snapshot", from: this.id, to, term: this.term, snapshot: this.#snapshot!, ...round });
      return;
    }
    const entries = heartbeat && next > this.lastIndex ? [] : this.#log.slice(next, next + (this.#opts.maxBatch ?? 64));
    this.#send({
      type: "append",
      from: this.id,
      to,
      term: this.term,
      prevIndex: next - 1,
      prevTerm: this.termAt(next - 1),
      entries,
      commit: this.commit,
      ...round,
    });
  }

  #maybeCommit(): void {
    const bug = this.#opts.bug === "joint-quorum-union" ? this.#opts.bug : undefined;
    // This node counts only for what it has stored: committed means durable on a quorum.
    const stored = Math.min(this.#unstableFrom - 1, this.lastIndex);
    const index = quorumIndex(this.config, (p) => p === this.id ? stored : this.#match.get(p) ?? 0, bug);
    if (index <= this.commit) return;
    if (this.termAt(index) !== this.term && this.#opts.bug !== "commit-old-term") return;
    this.commit = index;
    this.#hardDirty = true;
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
    this.#out.push(m);
  }

  #resetTimeout(): void {
    this.#timeout = this.#opts.electionTicks + Math.floor(this.#opts.random() * this.#opts.electionTicks);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
