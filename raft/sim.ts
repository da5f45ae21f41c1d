/**
 * A deterministic simulator: all nodes in one process, one seed drives every
 * choice, so a failing seed replays exactly. Faults: message drops,
 * duplicates, reordering and long delays; split, one-way and bridge
 * partitions; crashes that lose unsynced writes and may tear the last one;
 * fsync errors (the node goes down without acknowledging); slow disks;
 * pauses; clock jumps; and, at the same time, membership changes, leader
 * transfers and snapshots. Each node runs the driver the core asks for
 * (persist, then send, then apply, then advance) over a modelled disk; the
 * invariants (raft/sim_check.ts) are checked after every step. A liveness
 * phase heals everything and requires a stable leader with every
 * acknowledged write applied everywhere.
 */

import { isJoint, members } from "./config.ts";
import { type ChangeResult, type ConfigChange, type Message, RaftNode, type Ready } from "./core.ts";
import { checkLinearizable, type Operation } from "./linearizability.ts";
import { InvariantViolation, SafetyChecker } from "./sim_check.ts";
import { SimClients } from "./sim_client.ts";
import { SimDisk } from "./sim_disk.ts";
import { encodePut, Kv } from "./kv.ts";
import { type PartitionKind, SimNetwork } from "./sim_net.ts";
import { seeded, type SimNode, type SimOptions } from "./sim_options.ts";
import type { Config } from "./types.ts";

export { InvariantViolation };
export { allFaults, seeded, type SimBug, type SimNode, type SimOptions } from "./sim_options.ts";

export class Simulation {
  readonly rand: () => number;
  readonly nodes = new Map<string, SimNode>();
  readonly ids: string[];
  /** The voters at the start. */
  readonly voters: string[];
  readonly network = new SimNetwork();
  readonly checker: SafetyChecker;
  readonly clients: SimClients;
  /** How often each fault and feature came up. */
  readonly stats = {
    crashes: 0,
    lostWrites: 0,
    tornWrites: 0,
    fsyncErrors: 0,
    slowSyncs: 0,
    pauses: 0,
    clockJumps: 0,
    splits: 0,
    oneWayPartitions: 0,
    bridgePartitions: 0,
    delayedMessages: 0,
    snapshotsTaken: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    configChanges: 0,
    configRefused: 0,
    transfers: 0,
    dedupedWrites: 0,
    followerReads: 0,
  };
  readonly #opts: SimOptions;
  #now = 0;
  /** Faults are on in this step. */
  #faulty = false;
  #spares = 0;
  #configSeen = -1;

  constructor(seed: number, opts: SimOptions) {
    this.rand = seeded(seed);
    this.#opts = opts;
    this.voters = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const learners = Array.from({ length: opts.learners ?? 0 }, (_, i) => `l${i + 1}`);
    this.ids = [...this.voters, ...learners];
    const initial = { voters: this.voters, learners };
    this.checker = new SafetyChecker(initial, opts.trustDisk);
    this.clients = new SimClients(opts.clients ?? 4, this.rand);
    for (const id of this.ids) this.#start(id, initial, new SimDisk());
  }

  /** A symmetric split set by hand: messages between this side and the rest are lost. */
  get side(): Set<string> | undefined {
    return this.network.side;
  }

  set side(side: Set<string> | undefined) {
    this.network.side = side;
  }

  /** Every client operation, for the linearizability check. */
  get history(): Operation[] {
    return this.clients.history;
  }

  get now(): number {
    return this.#now;
  }

  #start(id: string, initial: Config, disk: SimDisk): void {
    const bug = this.#opts.bug === "ack-before-fsync" || this.#opts.bug === "no-session-dedup"
      ? undefined
      : this.#opts.bug;
    const d = disk.synced;
    const raft = new RaftNode({
      id,
      voters: initial.voters,
      learners: initial.learners,
      electionTicks: 10,
      heartbeatTicks: 3,
      random: this.rand,
      maxBatch: this.#opts.maxBatch ?? 8,
      restore: { hardState: { ...d.hardState }, entries: [...d.entries], ...(d.snapshot && { snapshot: d.snapshot }) },
      ...(bug && { bug }),
    });
    const noDedup = this.#opts.bug === "no-session-dedup";
    const kv = d.snapshot ? Kv.decode(d.snapshot.data, noDedup) : new Kv(noDedup);
    const before = this.nodes.get(id);
    const joined = before?.joined ?? members(initial).includes(id);
    this.nodes.set(id, {
      raft,
      alive: true,
      removed: false,
      joined,
      disk,
      kv,
      applied: d.snapshot?.index ?? 0,
      reads: [],
      pausedUntil: 0,
      downUntil: 0,
      initial,
      ...(before?.leavesAt !== undefined && { leavesAt: before.leavesAt }),
    });
    if (d.snapshot) this.checker.loadedSnapshot(raft, d.snapshot, kv.digest());
  }

  #running(n: SimNode): boolean {
    return n.alive && n.pausedUntil <= this.#now;
  }

  /** One random action: under faults, and with client load unless `load` is false. */
  step(faults = true, load = true): void {
    this.#now++;
    this.#faulty = faults;
    this.network.release(this.#now);
    const r = this.rand();
    const node = this.nodes.get(this.ids[Math.floor(this.rand() * this.ids.length)])!;
    if (faults) this.#faults();
    for (const n of this.nodes.values()) if (!n.alive && !n.removed && n.downUntil <= this.#now) this.#restart(n);
    if (faults && r < this.#opts.crash) {
      if (node.alive) this.#crash(node, 20 + Math.floor(this.rand() * 300));
    } else if (r < 0.25) {
      if (this.#running(node)) node.raft.tick();
    } else if (r < 0.3) {
      if (load) this.#clientAction();
    } else this.#deliverOne(faults);
    this.#afterAction();
  }

  #faults(): void {
    const o = this.#opts;
    const running = () => [...this.nodes.values()].filter((n) => this.#running(n));
    const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(this.rand() * list.length)];
    if (this.rand() < (o.partition ?? 0)) {
      if (this.network.partition) this.network.reconnect();
      else {
        const kind = pick<PartitionKind>(["split", "one-way", "bridge"])!;
        this.network.split(kind, this.ids, this.rand);
        this.stats[kind === "split" ? "splits" : kind === "one-way" ? "oneWayPartitions" : "bridgePartitions"]++;
      }
    }
    if (this.rand() < (o.pause ?? 0)) {
      const n = pick(running());
      if (n) n.pausedUntil = this.#now + 50 + Math.floor(this.rand() * 950);
      if (n) this.stats.pauses++;
    }
    if (this.rand() < (o.clockJump ?? 0)) {
      const n = pick(running());
      for (let i = 5 + Math.floor(this.rand() * 35); n && i > 0; i--) n.raft.tick();
      if (n) this.stats.clockJumps++;
    }
  }

  #deliverOne(faults: boolean): void {
    const queue = this.network.queue;
    if (queue.length === 0) return;
    const m = this.network.take(Math.floor(this.rand() * queue.length));
    const to = this.nodes.get(m.to);
    if (!to || !to.alive) return;
    if (to.pausedUntil > this.#now) return void queue.push(m); // it waits for the node to wake up
    if (faults && this.rand() < this.#opts.duplicate) queue.push(m);
    if (this.network.blocked(m.from, m.to) || (faults && this.rand() < this.#opts.drop)) return;
    if (m.type === "snapshot") this.stats.snapshotsSent++;
    to.raft.step(m);
  }

  /** Takes `n` down for `downtime` steps (for good when Infinity). */
  #crash(n: SimNode, downtime = Infinity): void {
    n.alive = false;
    n.downUntil = this.#now + downtime;
    n.inflight = undefined; // what it had not synced is not acknowledged, and never will be
    n.pausedUntil = 0;
    n.downWith = { ...n.disk.synced.hardState };
    const { lost, torn } = n.disk.crash(this.rand);
    this.stats.lostWrites += lost;
    if (torn) this.stats.tornWrites++;
    this.network.dropTo(n.raft.id);
    this.clients.lost(n.raft.id);
    this.stats.crashes++;
  }

  #restart(n: SimNode): void {
    this.#start(n.raft.id, n.initial, n.disk);
    const r = this.nodes.get(n.raft.id)!.raft;
    if (n.downWith) {
      this.checker.forward(r.id, n.downWith, {
        term: r.term,
        ...(r.votedFor && { vote: r.votedFor }),
        commit: r.commit,
      });
    }
  }

  /**
   * A client's put at a node that leads or get at any running node; now and then a leader transfer or a membership
   * change instead.
   */
  #clientAction(): void {
    const running = [...this.nodes.values()].filter((n) => this.#running(n));
    const leaders = running.filter((n) => n.raft.role === "leader");
    const leader = leaders[Math.floor(this.rand() * leaders.length)];
    if (leader && this.rand() < (this.#opts.membership ?? 0)) return this.#changeMembership(leader);
    if (leader && this.rand() < 0.02) {
      if (leader.raft.transferLeadership(this.ids[Math.floor(this.rand() * this.ids.length)])) this.stats.transfers++;
      return;
    }
    this.clients.act(this.#now, leaders.map((n) => n.raft), running.map((n) => n.raft));
  }

  /** Adds a fresh node as a learner, promotes, demotes, removes, or picks a whole new set of voters. */
  #changeMembership(leader: SimNode): void {
    const c = leader.raft.config;
    let voters = [...c.voters], learners = [...c.learners];
    const pool = [...voters, ...learners];
    const pick = (list: string[]) => list[Math.floor(this.rand() * list.length)];
    const without = (list: string[], x: string) => list.filter((y) => y !== x);
    const roll = this.rand();
    let fresh: string | undefined;
    if (roll < 0.25 && this.ids.length < 9) learners.push(fresh = `s${++this.#spares}`);
    else if (roll < 0.45 && learners.length > 0) {
      const l = pick(learners);
      learners = without(learners, l);
      voters.push(l);
    } else if (roll < 0.6 && voters.length > 1) {
      const v = pick(voters);
      voters = without(voters, v);
      learners.push(v);
    } else if (roll < 0.75 && voters.length > 1) {
      const x = pick(pool);
      voters = without(voters, x);
      learners = without(learners, x);
    } else {
      voters = pool.filter(() => this.rand() < 0.6);
      if (voters.length === 0) voters = [pick(pool)];
      learners = pool.filter((x) => !voters.includes(x));
    }
    const result = leader.raft.changeConfig({ voters, learners });
    if (!result.ok) return void this.stats.configRefused++;
    this.stats.configChanges++;
    if (fresh) {
      this.ids.push(fresh);
      this.#start(fresh, { voters: [], learners: [] }, new SimDisk());
    }
  }

  /** Linearizability of every client operation so far. */
  checkHistory(): void {
    const verdict = checkLinearizable(this.history);
    if (!verdict.ok) throw new InvariantViolation(`history not linearizable for key ${verdict.key}`);
  }

  #afterAction(): void {
    for (const n of this.nodes.values()) if (this.#running(n)) this.#drive(n);
    this.checker.check([...this.nodes.values()].filter((n) => n.alive).map((n) => n.raft));
    this.#decommission();
  }

  /** The driver: persist, then (once synced) send, apply and advance. */
  #drive(n: SimNode): void {
    for (;;) {
      if (n.inflight) {
        if (this.#now < n.inflight.syncAt) return;
        if (this.#faulty && this.rand() < (this.#opts.fsyncError ?? 0)) {
          // fsync failed: the node must stop; it acknowledged nothing of what it was writing.
          this.stats.fsyncErrors++;
          return this.#crash(n, 20 + Math.floor(this.rand() * 300));
        }
        const before = n.disk.synced.hardState;
        n.disk.sync();
        this.checker.forward(n.raft.id, before, n.disk.synced.hardState);
        const { rd, released } = n.inflight;
        n.inflight = undefined;
        if (!released) this.#release(n, rd);
      }
      if (!n.raft.hasReady()) return;
      const rd = n.raft.ready();
      if (rd.snapshot) n.disk.write({ kind: "snapshot", snapshot: rd.snapshot });
      if (rd.entries.length > 0) n.disk.write({ kind: "entries", entries: rd.entries });
      if (rd.hardState) n.disk.write({ kind: "hard-state", hardState: rd.hardState });
      const slow = this.#faulty && this.rand() < (this.#opts.slowDisk ?? 0);
      if (slow) this.stats.slowSyncs++;
      n.inflight = { rd, syncAt: this.#now + (slow ? 1 + Math.floor(this.rand() * 40) : 0), released: false };
      if (this.#opts.bug === "ack-before-fsync") {
        n.inflight.released = true;
        this.#release(n, rd);
      }
    }
  }

  /** What a synced Ready allows: send its messages, load its snapshot, apply its entries, answer reads, advance. */
  #release(n: SimNode, rd: Ready): void {
    const id = n.raft.id;
    for (const m of rd.messages) {
      this.checker.released(id, m, n.disk);
      const late = this.#faulty && this.rand() < (this.#opts.delay ?? 0);
      if (late) this.stats.delayedMessages++;
      this.network.send(m, this.#now, late ? 100 + Math.floor(this.rand() * 500) : 0);
    }
    if (rd.snapshot) {
      n.kv = Kv.decode(rd.snapshot.data, this.#opts.bug === "no-session-dedup");
      n.applied = rd.snapshot.index;
      this.checker.loadedSnapshot(n.raft, rd.snapshot, n.kv.digest());
      this.stats.snapshotsInstalled++;
    }
    for (const e of rd.committed) {
      if (e.index !== n.applied + 1) throw new InvariantViolation(`${id} applied ${e.index} right after ${n.applied}`);
      const outcome = n.kv.apply(e);
      if (outcome?.status === "duplicate") this.stats.dedupedWrites++;
      n.applied = e.index;
      this.checker.applied(n.raft, e, n.kv.digest(), outcome, n.disk);
      this.clients.applied(id, e, outcome, this.#now);
    }
    n.reads.push(...rd.reads);
    n.reads = n.reads.filter((r) => {
      if (r.index > n.applied) return true;
      const answered = this.clients.read(id, r.ctx, (key) => n.kv.kv.get(key) ?? null, this.#now);
      if (answered && n.raft.role !== "leader") this.stats.followerReads++;
      return false;
    });
    n.raft.advance(rd);
    const every = this.#opts.snapshotEvery ?? 0;
    if (every > 0 && n.applied - n.raft.snapshotIndex >= every) {
      n.disk.write({ kind: "snapshot", snapshot: n.raft.snapshot(n.applied, n.kv.encode()) });
      this.stats.snapshotsTaken++;
    }
  }

  /** A node no longer in the committed config is shut down for good (it is never added back), a while later. */
  #decommission(): void {
    const { index, config } = this.checker.committedConfig;
    if (index !== this.#configSeen) {
      this.#configSeen = index;
      const inConfig = members(config);
      for (const n of this.nodes.values()) {
        if (inConfig.includes(n.raft.id)) n.joined = true;
        else if (n.joined && !n.removed && n.leavesAt === undefined) {
          // Until the operator gets to it, a removed node runs on, with the config it last knew.
          n.leavesAt = this.#now + 100 + Math.floor(this.rand() * 900);
        }
      }
    }
    for (const n of this.nodes.values()) {
      if (n.leavesAt === undefined || n.leavesAt > this.#now || n.removed) continue;
      if (n.alive) this.#crash(n);
      n.removed = true;
    }
  }

  /**
   * Heals every fault, then runs until one leader has stayed for 300 steps
   * with its config settled and every member having applied everything, every
   * acknowledged write included; false if that did not happen in `maxSteps`.
   */
  settle(maxSteps: number): boolean {
    this.network.heal();
    for (const n of this.nodes.values()) {
      if (n.leavesAt !== undefined) n.leavesAt = this.#now;
      n.pausedUntil = 0;
      if (!n.alive && !n.removed) this.#restart(n);
    }
    let stable = "", since = 0;
    for (let i = 0; i < maxSteps; i++) {
      this.step(false, false);
      const leader = this.#settledLeader();
      const who = leader ? `${leader.id}@${leader.term}` : "";
      if (who !== stable) [stable, since] = [who, i];
      if (stable !== "" && i - since >= 300) return this.#acknowledgedApplied(leader!);
    }
    return false;
  }

  /** Every write a client was told succeeded is in the state machines (an invariant: false never comes back). */
  #acknowledgedApplied(leader: RaftNode): true {
    for (const a of this.clients.acknowledged) {
      const at = this.checker.effectOf(a.client, a.seq);
      if (at === undefined || at > leader.commit) {
        throw new InvariantViolation(`acknowledged write ${a.client}#${a.seq} lost`);
      }
    }
    return true;
  }

  #settledLeader(): RaftNode | undefined {
    const leaders = [...this.nodes.values()].filter((n) => n.alive && n.raft.role === "leader");
    if (leaders.length !== 1) return undefined;
    const l = leaders[0].raft;
    if (l.commit < l.lastIndex || isJoint(l.config)) return undefined;
    for (const id of members(l.config)) {
      const n = this.nodes.get(id);
      if (!n?.alive || n.applied !== l.commit || n.raft.term !== l.term) return undefined;
    }
    return l;
  }

  // Scripted schedules (tests): each action is followed by the drivers and the invariants, like a step.

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) this.nodes.get(id)!.raft.tick();
    this.#afterAction();
  }

  /** Delivers every queued message `match` picks, and those that follow from them, until none is left. */
  deliver(match: (m: Message) => boolean): void {
    for (let n = 0; n < 10_000; n++) {
      const i = this.network.queue.findIndex(match);
      if (i < 0) return;
      const m = this.network.take(i);
      const to = this.nodes.get(m.to);
      if (to?.alive) to.raft.step(m);
      this.#afterAction();
    }
    throw new Error("deliver: messages keep coming");
  }

  /** Loses every queued message `match` picks. */
  drop(match: (m: Message) => boolean): void {
    this.network.extract(match);
  }

  crash(id: string): void {
    this.#crash(this.nodes.get(id)!);
    this.#afterAction();
  }

  restart(id: string): void {
    this.#restart(this.nodes.get(id)!);
    this.#afterAction();
  }

  /** A membership change asked of `id`. */
  changeConfig(id: string, change: ConfigChange): ChangeResult {
    const result = this.nodes.get(id)!.raft.changeConfig(change);
    this.#afterAction();
    return result;
  }

  /** A client's write at `id`, outside any session. */
  put(id: string, key: string, value: string): number | undefined {
    const index = this.nodes.get(id)!.raft.propose(encodePut({ key, value }));
    this.#afterAction();
    return index;
  }
}
