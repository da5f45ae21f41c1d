/**
 * A deterministic simulator: all nodes in one process, one seed drives every
 * choice (which node ticks, which message arrives, drops, duplicates,
 * crashes), so a failing seed replays exactly. Safety invariants are checked
 * after every step; a liveness phase heals all faults and requires progress.
 */

import { type Message, RaftNode, type RaftOptions } from "./core.ts";
import { checkLinearizable, type Operation } from "./linearizability.ts";
import type { Entry, HardState } from "./types.ts";

/** mulberry32: small, seeded, good enough to explore schedules. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimNode {
  raft: RaftNode;
  alive: boolean;
  /** What the node's storage holds (survives crashes). */
  disk: { hardState: HardState; entries: Entry[] };
  /** What its state machine applied since it last started. */
  applied: Entry[];
  /** The key-value state machine those entries built. */
  kv: Map<string, string>;
  /** ReadIndex reads released to this node, waiting for it to apply their index. */
  reads: { ctx: string; index: number }[];
}

export interface SimOptions {
  nodes: number;
  drop: number;
  duplicate: number;
  crash: number;
  /** Chance per step of splitting the network in two (or healing a split). */
  partition?: number;
  /** Non-voting members that only replicate. */
  learners?: number;
  bug?: RaftOptions["bug"];
}

export class InvariantViolation extends Error {}

export class Simulation {
  readonly rand: () => number;
  readonly nodes = new Map<string, SimNode>();
  readonly ids: string[];
  readonly voters: string[];
  network: Message[] = [];
  /** While set, messages between this side and the rest are lost. */
  side?: Set<string>;
  readonly #opts: SimOptions;
  /** term -> leader seen in it */
  readonly #leaders = new Map<number, string>();
  /** index -> the entry committed there (term and data), and the term it was first seen committed in */
  readonly #committed = new Map<number, { term: number; data: string; seenIn: number }>();
  #ops = 0;
  #steps = 0;
  /** Every client operation, for the linearizability check. */
  readonly history: Operation[] = [];
  /** Puts waiting for their proposer to apply them, and gets waiting for their read. */
  readonly #waiting = new Map<string, { op: Operation; node: string }>();

  constructor(seed: number, opts: SimOptions) {
    this.rand = seeded(seed);
    this.#opts = opts;
    this.voters = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.ids = [...this.voters, ...Array.from({ length: opts.learners ?? 0 }, (_, i) => `l${i + 1}`)];
    for (const id of this.ids) this.#start(id, { hardState: { term: 0, commit: 0 }, entries: [] });
  }

  #start(id: string, disk: SimNode["disk"]): void {
    const raft = new RaftNode({
      id,
      voters: this.voters,
      learners: this.ids.filter((x) => !this.voters.includes(x)),
      electionTicks: 10,
      heartbeatTicks: 3,
      random: this.rand,
      maxBatch: 8,
      restore: { hardState: { ...disk.hardState }, entries: [...disk.entries] },
      ...(this.#opts.bug && { bug: this.#opts.bug }),
    });
    this.nodes.set(id, { raft, alive: true, disk, applied: [], kv: new Map(), reads: [] });
  }

  /** One random action: under faults, and with client load unless `load` is false. */
  step(faults = true, load = true): void {
    this.#steps++;
    const r = this.rand();
    const ids = this.ids;
    const id = ids[Math.floor(this.rand() * ids.length)];
    const node = this.nodes.get(id)!;
    if (faults && this.rand() < (this.#opts.partition ?? 0)) {
      this.side = this.side ? undefined : new Set(this.ids.filter(() => this.rand() < 0.5));
    }
    if (faults && r < this.#opts.crash) {
      if (node.alive) {
        node.alive = false; // crash: memory gone, disk kept
        this.network = this.network.filter((m) => m.to !== id);
      } else {
        this.#start(id, node.disk);
      }
    } else if (r < 0.25) {
      if (node.alive) node.raft.tick();
    } else if (r < 0.3) {
      if (!load) return this.#settleDrive();
      this.#client();
    } else if (this.network.length > 0) {
      const i = Math.floor(this.rand() * this.network.length);
      const [m] = this.network.splice(i, 1);
      const to = this.nodes.get(m.to)!;
      if (faults && this.rand() < this.#opts.duplicate) this.network.push(m);
      const cut = this.side !== undefined && this.side.has(m.from) !== this.side.has(m.to);
      if (to.alive && !cut && !(faults && this.rand() < this.#opts.drop)) to.raft.step(m);
    }
    for (const n of this.nodes.values()) if (n.alive) this.#drive(n);
    this.#check();
  }

  /** A client's put (a proposal) or get (a ReadIndex read) at whichever node leads; now and then a leader transfer. */
  #client(): void {
    const leader = [...this.nodes.values()].find((n) => n.alive && n.raft.role === "leader");
    if (!leader) return;
    if (this.rand() < 0.02) {
      leader.raft.transferLeadership(this.ids[Math.floor(this.rand() * this.ids.length)]);
      return;
    }
    const key = this.rand() < 0.5 ? "a" : "b";
    const id = `c${++this.#ops}`;
    if (this.rand() < 0.5) {
      const op: Operation = { key, kind: "put", value: id, invoke: this.#steps };
      if (leader.raft.propose(new TextEncoder().encode(JSON.stringify({ id, key, value: id }))) === undefined) return;
      this.history.push(op);
      this.#waiting.set(id, { op, node: leader.raft.id });
    } else {
      const op: Operation = { key, kind: "get", invoke: this.#steps };
      if (!leader.raft.readIndex(id)) return;
      this.history.push(op);
      this.#waiting.set(id, { op, node: leader.raft.id });
    }
  }

  /** Linearizability of every client operation so far. */
  checkHistory(): void {
    const verdict = checkLinearizable(this.history);
    if (!verdict.ok) throw new InvariantViolation(`history not linearizable for key ${verdict.key}`);
  }

  #settleDrive(): void {
    for (const n of this.nodes.values()) if (n.alive) this.#drive(n);
    this.#check();
  }

  /** The driver: persist, then send, then apply, then advance. */
  #drive(n: SimNode): void {
    const rd = n.raft.ready();
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      n.disk.entries = [...n.disk.entries.slice(0, first - 1), ...rd.entries];
    }
    if (rd.hardState) {
      if (rd.hardState.term < n.disk.hardState.term) {
        throw new InvariantViolation(`${n.raft.id}: persisted term went back`);
      }
      n.disk.hardState = { ...rd.hardState };
    }
    this.network.push(...rd.messages);
    for (const e of rd.committed) {
      n.applied.push(e);
      if (e.data.length === 0) continue;
      const { id, key, value } = JSON.parse(new TextDecoder().decode(e.data));
      n.kv.set(key, value);
      const w = this.#waiting.get(id);
      if (w && w.node === n.raft.id) {
        w.op.response = this.#steps;
        this.#waiting.delete(id);
      }
    }
    n.reads.push(...rd.reads);
    n.reads = n.reads.filter((r) => {
      if (r.index > n.applied.length) return true;
      const w = this.#waiting.get(r.ctx);
      if (w && w.node === n.raft.id) {
        w.op.output = n.kv.get(w.op.key) ?? null;
        w.op.response = this.#steps;
        this.#waiting.delete(r.ctx);
      }
      return false;
    });
    n.raft.advance(rd);
  }

  #check(): void {
    const live = [...this.nodes.values()].filter((n) => n.alive);
    for (const n of live) {
      const r = n.raft;
      if (r.role === "leader") {
        if (!this.voters.includes(r.id)) throw new InvariantViolation(`learner ${r.id} became leader`);
        const seen = this.#leaders.get(r.term);
        if (seen && seen !== r.id) throw new InvariantViolation(`two leaders in term ${r.term}: ${seen} and ${r.id}`);
        this.#leaders.set(r.term, r.id);
        for (const [index, c] of this.#committed) {
          // Leaders of later terms hold every committed entry (a deposed leader of an older term may not).
          if (r.term > c.seenIn && r.termAt(index) !== c.term) {
            throw new InvariantViolation(
              `leader completeness: ${r.id} (term ${r.term}) lacks committed entry ${index}`,
            );
          }
        }
      }
      for (let i = 1; i <= r.commit; i++) {
        const e = r.log[i - 1];
        const data = new TextDecoder().decode(e.data);
        const known = this.#committed.get(i);
        if (known && (known.term !== e.term || known.data !== data)) {
          throw new InvariantViolation(`committed entry ${i} changed on ${r.id}: term ${known.term} -> ${e.term}`);
        }
        if (!known) this.#committed.set(i, { term: e.term, data, seenIn: r.term });
      }
    }
    // Log matching: same index and term means the same prefix.
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const x = live[a].raft, y = live[b].raft;
        const n = Math.min(x.lastIndex, y.lastIndex);
        let matched = false;
        for (let i = n; i >= 1; i--) {
          if (!matched && x.termAt(i) === y.termAt(i)) matched = true;
          else if (matched && x.termAt(i) !== y.termAt(i)) {
            throw new InvariantViolation(`log matching: ${x.id} and ${y.id} differ at ${i} below a matching entry`);
          }
        }
      }
    }
    // State machine safety: what was applied is a prefix of the committed log.
    for (const n of live) {
      n.applied.forEach((e, i) => {
        const c = this.#committed.get(i + 1);
        if (!c || c.term !== e.term) {
          throw new InvariantViolation(`${n.raft.id} applied entry ${i + 1} that is not the committed one`);
        }
      });
    }
  }

  /** Heals every fault and runs until all nodes applied everything committed; false if it did not. */
  settle(maxSteps: number): boolean {
    this.side = undefined;
    for (const [id, n] of this.nodes) if (!n.alive) this.#start(id, n.disk);
    for (let i = 0; i < maxSteps; i++) {
      this.step(false, false);
      const nodes = [...this.nodes.values()];
      const leader = nodes.find((n) => n.raft.role === "leader");
      if (!leader || leader.raft.commit < leader.raft.lastIndex) continue;
      if (nodes.every((n) => n.applied.length === leader.raft.commit && n.raft.term === leader.raft.term)) return true;
    }
    return false;
  }
}
