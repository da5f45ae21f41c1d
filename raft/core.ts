/**
 * The Raft core (etcd-io/raft's shape): no I/O, no clock, no randomness of its
 * own. Time is `tick()`; messages come in through `step()`; what must be
 * persisted, sent and applied comes out of `ready()`. The driver persists the
 * entries and hard state, then sends the messages, then applies the committed
 * entries, then calls `advance()`: nothing is acknowledged before it is stored.
 *
 * This slice: leader election with randomized timeouts (from an injected
 * random source), pre-vote and check-quorum together (a node cut off cannot
 * disrupt a healthy leader when it returns, and a leader cut off from its
 * quorum steps down), log replication with batching, a no-op at the start of
 * each term, and commitment of current-term entries by counting.
 */

import type { Message, Ready } from "./messages.ts";
import type { Entry, HardState } from "./types.ts";

export type { Message, Ready };

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

export interface RaftOptions {
  id: string;
  /** Every voter, this node included. */
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
  /** What was persisted before a restart. */
  restore?: { hardState: HardState; entries: Entry[] };
  /** Test-only: re-introduce a classic bug to prove the simulator catches it. */
  bug?: "vote-without-log-check" | "commit-old-term";
}

export class RaftNode {
  readonly id: string;
  role: Role = "follower";
  term = 0;
  votedFor?: string;
  leader?: string;
  commit = 0;
  /** log[i] holds index i + 1. */
  readonly log: Entry[] = [];
  #applied = 0;
  readonly #opts: RaftOptions;
  readonly #voters: string[];
  readonly #learners: string[];
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
    this.#voters = [...opts.voters].sort();
    this.#learners = [...(opts.learners ?? [])].filter((l) => !this.#voters.includes(l)).sort();
    if (opts.restore) {
      this.term = opts.restore.hardState.term;
      this.votedFor = opts.restore.hardState.vote;
      this.commit = opts.restore.hardState.commit;
      this.log.push(...opts.restore.entries);
    }
    this.#resetTimeout();
  }

  get lastIndex(): number {
    return this.log.length;
  }

  termAt(index: number): number {
    return index === 0 ? 0 : this.log[index - 1]?.term ?? -1;
  }

  tick(): void {
    if (this.role === "leader") {
      if (this.#transferee !== undefined && --this.#transferTicks <= 0) this.#transferee = undefined;
      // Check-quorum: a leader that has not heard from a quorum in an election timeout steps down.
      if (++this.#quorumElapsed >= this.#opts.electionTicks) {
        this.#quorumElapsed = 0;
        const heard = [...this.#active].filter((p) => this.#voters.includes(p)).length;
        if (heard + 1 < this.#quorum()) return this.#becomeFollower(this.term);
        this.#active.clear();
      }
      if (++this.#elapsed >= this.#opts.heartbeatTicks) {
        this.#elapsed = 0;
        for (const peer of this.#peers()) this.#sendAppend(peer, true);
      }
      return;
    }
    // A learner never campaigns: it only follows.
    if (++this.#elapsed >= this.#timeout && this.#voters.includes(this.id)) this.#preCampaign();
  }

  /**
   * Hands leadership to `to`: once it has the whole log, it is told to
   * campaign at once. Proposals pause meanwhile; after an election timeout
   * without success the transfer is abandoned.
   */
  transferLeadership(to: string): boolean {
    if (this.role !== "leader" || to === this.id || !this.#voters.includes(to)) return false;
    this.#transferee = to;
    this.#transferTicks = this.#opts.electionTicks;
    if ((this.#match.get(to) ?? 0) >= this.lastIndex) {
      this.#send({ type: "timeout-now", from: this.id, to, term: this.term });
    } else this.#sendAppend(to, false);
    return true;
  }

  /** Appends `data` if this node leads; returns its index, or undefined (ask the leader). */
  propose(data: Uint8Array): number | undefined {
    if (this.role !== "leader" || this.#transferee !== undefined) return undefined;
    const index = this.#append([{ index: this.lastIndex + 1, term: this.term, kind: "normal", data }]);
    for (const peer of this.#peers()) this.#sendAppend(peer, false);
    this.#maybeCommit();
    return index;
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

  #releaseReads(): void {
    while (this.#pendingReads.length > 0 && this.#pendingReads[0].acks.size >= this.#quorum()) {
      const r = this.#pendingReads.shift()!;
      this.#reads.push({ ctx: r.ctx, index: r.index });
    }
  }

  step(m: Message): void {
    if (m.type === "pre-vote") return this.#onPreVote(m);
    if (m.type === "pre-vote-response") return this.#onPreVoteResponse(m);
    if (m.term > this.term) {
      // Leader stickiness: while this node hears from a leader, a vote request does not move its term
      // (unless that leader asked for the election, by a transfer).
      if (m.type === "vote" && this.#inLease() && !m.transfer) return;
      this.#becomeFollower(m.term, m.type === "append" ? m.from : undefined);
    }
    if (m.term < this.term) {
      if (m.type === "append") this.#answerAppend(m, false, this.lastIndex);
      if (m.type === "vote") {
        this.#send({ type: "vote-response", from: this.id, to: m.from, term: this.term, granted: false });
      }
      return;
    }
    switch (m.type) {
      case "timeout-now":
        if (this.role === "follower") this.#campaign(true);
        return;
      case "vote":
        return this.#onVote(m);
      case "vote-response":
        return this.#onVoteResponse(m);
      case "append":
        return this.#onAppend(m);
      case "append-response":
        return this.#onAppendResponse(m);
    }
  }

  ready(): Ready {
    const entries = this.#unstableFrom <= this.lastIndex ? this.log.slice(this.#unstableFrom - 1) : [];
    const committed = this.log.slice(this.#applied, this.commit);
    return {
      entries,
      ...(this.#hardDirty &&
        {
          hardState: {
            term: this.term,
            ...(this.votedFor !== undefined && { vote: this.votedFor }),
            commit: this.commit,
          },
        }),
      messages: this.#out,
      committed,
      reads: this.#reads,
    };
  }

  /** The driver has persisted, sent and applied what `ready` gave. */
  advance(ready: Ready): void {
    this.#out = this.#out.slice(ready.messages.length);
    this.#reads = this.#reads.slice(ready.reads.length);
    this.#unstableFrom = Infinity;
    this.#hardDirty = false;
    this.#applied += ready.committed.length;
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
    if (this.#votes.size >= this.#quorum()) this.#campaign();
  }

  /** Asks for pre-votes first: a real campaign (and a new term) only if a quorum would vote. */
  #preCampaign(): void {
    this.role = "pre-candidate";
    this.leader = undefined;
    this.#votes = new Set([this.id]);
    this.#elapsed = 0;
    this.#resetTimeout();
    if (this.#votes.size >= this.#quorum()) return this.#campaign();
    this.#askVotes("pre-vote", this.term + 1, false);
  }

  /** Sends a (pre-)vote request for `term` to every other voter. */
  #askVotes(type: "vote" | "pre-vote", term: number, transfer: boolean): void {
    const lastTerm = this.termAt(this.lastIndex);
    for (const peer of this.#voters.filter((v) => v !== this.id)) {
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
    if (this.#votes.size >= this.#quorum()) this.#becomeLeader();
  }

  #onAppend(m: Extract<Message, { type: "append" }>): void {
    this.role = "follower";
    this.leader = m.from;
    this.#elapsed = 0;
    if (m.prevIndex > this.lastIndex || this.termAt(m.prevIndex) !== m.prevTerm) {
      // A rejection still acknowledges this leader (its read round counts).
      return this.#answerAppend(m, false, Math.min(m.prevIndex - 1, this.lastIndex));
    }
    const fresh: Entry[] = [];
    for (const e of m.entries) {
      if (e.index <= this.lastIndex && this.termAt(e.index) === e.term) continue; // already have it
      fresh.push(e);
    }
    if (fresh.length > 0) this.#append(fresh);
    // Commit only what this message proved matches the leader's log.
    const verified = m.prevIndex + m.entries.length;
    const commit = Math.min(m.commit, verified);
    if (commit > this.commit) {
      this.commit = commit;
      this.#hardDirty = true;
    }
    this.#answerAppend(m, true, verified);
  }

  /** Answers an append, echoing its read round (ReadIndex). */
  #answerAppend(m: Extract<Message, { type: "append" }>, success: boolean, index: number): void {
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
      if ((this.#next.get(m.from) ?? 1) <= this.lastIndex) this.#sendAppend(m.from, false);
      else if (m.from === this.#transferee) {
        this.#send({ type: "timeout-now", from: this.id, to: m.from, term: this.term });
      }
    } else {
      this.#next.set(m.from, Math.max(1, Math.min((this.#next.get(m.from) ?? 1) - 1, m.index + 1)));
      this.#sendAppend(m.from, false);
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
    if (this.#votes.size >= this.#quorum()) return this.#becomeLeader();
    this.#askVotes("vote", this.term, transfer);
  }

  #becomeFollower(term: number, leader?: string): void {
    this.#pendingReads = []; // not confirmed: the clients ask again
    this.#transferee = undefined;
    this.role = "follower";
    this.term = term;
    this.votedFor = undefined;
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
    for (const peer of this.#peers()) {
      this.#next.set(peer, this.lastIndex + 1);
      this.#match.set(peer, 0);
    }
    // A no-op of the new term: entries of earlier terms commit once it does.
    this.#append([{ index: this.lastIndex + 1, term: this.term, kind: "noop", data: new Uint8Array() }]);
    for (const peer of this.#peers()) this.#sendAppend(peer, false);
    this.#maybeCommit();
  }

  #append(entries: Entry[]): number {
    const first = entries[0].index;
    if (first <= this.lastIndex) this.log.length = first - 1; // a conflicting suffix goes
    this.log.push(...entries);
    this.#unstableFrom = Math.min(this.#unstableFrom, first);
    if (this.role === "leader") this.#match.set(this.id, this.lastIndex);
    return this.lastIndex;
  }

  #sendAppend(to: string, heartbeat: boolean): void {
    const next = this.#next.get(to) ?? this.lastIndex + 1;
    const entries = heartbeat && next > this.lastIndex
      ? []
      : this.log.slice(next - 1, next - 1 + (this.#opts.maxBatch ?? 64));
    this.#send({
      type: "append",
      from: this.id,
      to,
      term: this.term,
      prevIndex: next - 1,
      prevTerm: this.termAt(next - 1),
      entries,
      commit: this.commit,
      ...(this.#readRound > 0 && { round: this.#readRound }),
    });
  }

  #maybeCommit(): void {
    for (let n = this.lastIndex; n > this.commit; n--) {
      if (this.termAt(n) !== this.term && this.#opts.bug !== "commit-old-term") break;
      const acks = this.#voters.filter((v) =>
        v === this.id ? this.lastIndex >= n : (this.#match.get(v) ?? 0) >= n
      ).length;
      if (acks >= this.#quorum()) {
        this.commit = n;
        this.#hardDirty = true;
        return;
      }
    }
  }

  #quorum(): number {
    return Math.floor(this.#voters.length / 2) + 1;
  }

  /** Everyone this node replicates to: the other voters and the learners. */
  #peers(): string[] {
    return [...this.#voters, ...this.#learners].filter((v) => v !== this.id);
  }

  #send(m: Message): void {
    this.#out.push(m);
  }

  #resetTimeout(): void {
    this.#timeout = this.#opts.electionTicks + Math.floor(this.#opts.random() * this.#opts.electionTicks);
  }
}
