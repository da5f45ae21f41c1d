/**
 * The simulator's safety invariants, checked after every step and at every
 * persist, send, apply and restart: at most one leader per term; log matching;
 * leader completeness; state machine safety (every node passes through the
 * same states, snapshots included); committed entries never change; a write
 * takes effect once; term, vote and commit only move forward, across restarts
 * too; and nothing is acknowledged before it is durable.
 */

import { decodeConfig, isVoter } from "./config.ts";
import type { RaftNode } from "./core.ts";
import type { Message } from "./messages.ts";
import type { SimDisk } from "./sim_disk.ts";
import type { SessionOutcome } from "./session.ts";
import type { Config, Entry, HardState, Snapshot } from "./types.ts";

export class InvariantViolation extends Error {}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

export class SafetyChecker {
  /** term -> its leader */
  readonly #leaders = new Map<number, string>();
  /** index -> the entry committed there, and the term of the node it was first seen committed at */
  readonly #committed = new Map<number, { entry: Entry; seenIn: number }>();
  #maxCommitted = 0;
  #config: { index: number; config: Config };
  /** index -> the state machine after applying through it */
  readonly #stateAt = new Map<number, string>();
  /** "client#seq" -> the index of the entry where that write took effect */
  readonly #effects = new Map<string, number>();
  /** Per running node: term and commit seen last (they only grow). */
  readonly #seen = new Map<RaftNode, { term: number; commit: number }>();

  /** Test-only: leave out the checks that nothing is acknowledged or applied before it is durable. */
  readonly #trustDisk: boolean;

  constructor(initial: Config, trustDisk = false) {
    this.#config = { index: 0, config: initial };
    this.#trustDisk = trustDisk;
  }

  /** The latest committed config, and its index. */
  get committedConfig(): { index: number; config: Config } {
    return this.#config;
  }

  /** Where the write (client, seq) took effect, if it did. */
  effectOf(client: string, seq: number): number | undefined {
    return this.#effects.get(`${client}#${seq}`);
  }

  /** After every step, over the running nodes. */
  check(nodes: readonly RaftNode[]): void {
    for (const r of nodes) {
      const seen = this.#seen.get(r);
      if (seen && (r.term < seen.term || r.commit < seen.commit)) fail(`${r.id}: term or commit went back`);
      this.#seen.set(r, { term: r.term, commit: r.commit });
      if (r.commit > r.lastIndex) fail(`${r.id}: commit ${r.commit} past its last index ${r.lastIndex}`);
      for (let i = r.snapshotIndex + 1; i <= r.commit; i++) this.#record(r.entryAt(i)!, r.term, r.id);
      if (r.role === "leader") this.#checkLeader(r);
    }
    // Log matching: same index and term means the same prefix.
    for (let a = 0; a < nodes.length; a++) {
      for (let b = a + 1; b < nodes.length; b++) {
        const x = nodes[a], y = nodes[b];
        const low = Math.max(x.snapshotIndex, y.snapshotIndex);
        let matched = false;
        for (let i = Math.min(x.lastIndex, y.lastIndex); i >= low; i--) {
          if (!matched && x.termAt(i) === y.termAt(i)) matched = true;
          else if (matched && x.termAt(i) !== y.termAt(i)) {
            fail(`log matching: ${x.id} and ${y.id} differ at ${i} below a matching entry`);
          }
        }
      }
    }
  }

  #checkLeader(r: RaftNode): void {
    const seen = this.#leaders.get(r.term);
    if (seen === undefined) {
      if (!isVoter(r.config, r.id) && !isVoter(r.committedConfig, r.id)) {
        fail(`${r.id} leads term ${r.term} without being a voter`);
      }
      this.#leaders.set(r.term, r.id);
    } else if (seen !== r.id) fail(`two leaders in term ${r.term}: ${seen} and ${r.id}`);
    // Leaders of later terms hold every committed entry (a deposed leader of an older term may not).
    for (let i = r.snapshotIndex + 1; i <= this.#maxCommitted; i++) {
      const c = this.#committed.get(i);
      if (c && c.seenIn < r.term && r.termAt(i) !== c.entry.term) {
        fail(`leader completeness: ${r.id} (term ${r.term}) lacks committed entry ${i}`);
      }
    }
  }

  #record(e: Entry, term: number, where: string): void {
    const known = this.#committed.get(e.index);
    if (!known) {
      this.#committed.set(e.index, { entry: e, seenIn: term });
      if (e.index > this.#maxCommitted) this.#maxCommitted = e.index;
      if (e.kind === "config" && e.index > this.#config.index) {
        this.#config = { index: e.index, config: decodeConfig(e.data) };
      }
    } else if (known.entry !== e && !sameEntry(known.entry, e)) {
      fail(`committed entry ${e.index} changed on ${where}: term ${known.entry.term} -> ${e.term}`);
    }
  }

  /** `node` applied `e` and its state machine is now `digest`. */
  applied(node: RaftNode, e: Entry, digest: string, outcome: SessionOutcome<string> | undefined, disk: SimDisk): void {
    if (!this.#trustDisk && disk.lastIndex < e.index) fail(`${node.id} applied entry ${e.index} before it was durable`);
    this.#record(e, node.term, node.id);
    this.#sameState(e.index, digest, node.id);
    if (outcome?.status === "applied" && e.client !== undefined) {
      const key = `${e.client}#${e.seq}`;
      const at = this.#effects.get(key);
      if (at !== undefined && at !== e.index) fail(`write ${key} took effect twice: at ${at} and at ${e.index}`);
      this.#effects.set(key, e.index);
    }
  }

  /** `node` loaded snapshot `s` and its state machine is now `digest`. */
  loadedSnapshot(node: RaftNode, s: Snapshot, digest: string): void {
    const c = this.#committed.get(s.index);
    if (c && c.entry.term !== s.term) {
      fail(`${node.id} loaded a snapshot at ${s.index} of term ${s.term}, not the committed one`);
    }
    this.#sameState(s.index, digest, node.id);
  }

  #sameState(index: number, digest: string, where: string): void {
    const known = this.#stateAt.get(index);
    if (known === undefined) this.#stateAt.set(index, digest);
    else if (known !== digest) fail(`state machine safety: ${where} reached another state at ${index}`);
  }

  /** A message leaves `from`: what it acknowledges must already be on disk. */
  released(from: string, m: Message, disk: SimDisk): void {
    if (this.#trustDisk) return;
    if (m.type === "append-response" && m.success && disk.lastIndex < m.index) {
      fail(`${from} acknowledged entries through ${m.index} with only ${disk.lastIndex} durable`);
    }
    const hard = disk.synced.hardState;
    // A durable later term is as good: this node can never vote in m.term again.
    if (m.type === "vote-response" && m.granted && hard.term <= m.term && (hard.term < m.term || hard.vote !== m.to)) {
      fail(`${from} granted its vote in term ${m.term} to ${m.to} before it was durable`);
    }
  }

  /** The durable hard state moves forward only: `before` is what was there, `after` what is (or was restored). */
  forward(node: string, before: HardState, after: HardState): void {
    if (after.term < before.term) fail(`${node}: term went back from ${before.term} to ${after.term}`);
    if (after.term === before.term && before.vote !== undefined && after.vote !== before.vote) {
      fail(`${node}: vote in term ${after.term} changed from ${before.vote} to ${after.vote ?? "none"}`);
    }
    if (after.commit < before.commit) fail(`${node}: commit went back from ${before.commit} to ${after.commit}`);
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.term === b.term && a.kind === b.kind && a.client === b.client && a.seq === b.seq &&
    a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);
}
