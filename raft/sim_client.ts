/**
 * The simulator's clients: each has one operation outstanding at a time, a put
 * (a proposal tagged with the client's session and the write's sequence
 * number) sent to a node that says it leads, or a get (a ReadIndex read) sent
 * to any running node, followers included (they ask their leader for the read
 * index). An operation not answered in time is sent again, a put to whichever
 * node leads then with the same sequence number, so the state machine applies
 * it once, a get to any node. Every operation goes into the history the
 * linearizability checker reads.
 */

import type { RaftNode } from "./core.ts";
import type { Operation } from "./linearizability.ts";
import type { SessionOutcome } from "./session.ts";
import { encodePut } from "./kv.ts";
import type { Entry } from "./types.ts";

interface Pending {
  op: Operation;
  seq: number;
  /** A get's read context. */
  ctx?: string;
  /** Nodes that took it and may still answer. */
  attempts: Set<string>;
  deadline: number;
}

interface Client {
  id: string;
  /** The last write's sequence number. */
  seq: number;
  reads: number;
  pending?: Pending;
}

export class SimClients {
  readonly history: Operation[] = [];
  /** Writes answered to their client, and retries sent. */
  readonly acknowledged: { client: string; seq: number }[] = [];
  retries = 0;
  readonly #clients: Client[];
  readonly #rand: () => number;

  constructor(count: number, rand: () => number) {
    this.#rand = rand;
    this.#clients = Array.from({ length: count }, (_, i) => ({ id: `c${i + 1}`, seq: 0, reads: 0 }));
  }

  /** One client acts at step `now`: a new operation, or a retry of one that timed out. */
  act(now: number, leaders: readonly RaftNode[], running: readonly RaftNode[]): void {
    const c = this.#clients[Math.floor(this.#rand() * this.#clients.length)];
    if (c.pending && now < c.pending.deadline) return;
    const leader = leaders.length > 0 ? leaders[Math.floor(this.#rand() * leaders.length)] : undefined;
    const any = running.length > 0 ? running[Math.floor(this.#rand() * running.length)] : undefined;
    if (c.pending) {
      const to = c.pending.op.kind === "put" ? leader : any;
      if (!to) return;
      this.retries++;
      this.#submit(c, c.pending, to, now);
      return;
    }
    const key = this.#rand() < 0.5 ? "a" : "b";
    const pending: Pending = this.#rand() < 0.5
      ? {
        op: { key, kind: "put", value: `${c.id}.${c.seq + 1}`, invoke: now },
        seq: c.seq + 1,
        attempts: new Set(),
        deadline: 0,
      }
      : {
        op: { key, kind: "get", invoke: now },
        seq: c.seq,
        ctx: `${c.id}:${++c.reads}`,
        attempts: new Set(),
        deadline: 0,
      };
    const to = pending.op.kind === "put" ? leader : any;
    if (!to || !this.#submit(c, pending, to, now)) return;
    if (pending.op.kind === "put") c.seq++;
    c.pending = pending;
    this.history.push(pending.op);
  }

  #submit(c: Client, p: Pending, node: RaftNode, now: number): boolean {
    const ok = p.op.kind === "put"
      ? node.propose(encodePut({ key: p.op.key, value: p.op.value! }), { client: c.id, seq: p.seq }) !== undefined
      : node.readIndex(p.ctx!);
    // Refused (not the leader after all, no leader known, or busy): try again soon.
    p.deadline = now + (ok ? 150 + Math.floor(this.#rand() * 150) : 10);
    if (ok) p.attempts.add(node.id);
    return ok;
  }

  /** `node` applied `e`: the client waiting on it there hears back. */
  applied(node: string, e: Entry, outcome: SessionOutcome<string> | undefined, now: number): void {
    if (e.client === undefined || outcome === undefined || outcome.status === "stale") return;
    const c = this.#clients.find((c) => c.id === e.client);
    const p = c?.pending;
    if (!c || !p || p.op.kind !== "put" || p.seq !== e.seq || !p.attempts.has(node)) return;
    p.op.response = now;
    c.pending = undefined;
    this.acknowledged.push({ client: c.id, seq: p.seq });
  }

  /** `node` may answer read `ctx` now, looking the key up in its state machine; true if a client was waiting. */
  read(node: string, ctx: string, lookup: (key: string) => string | null, now: number): boolean {
    const c = this.#clients.find((c) => c.pending?.ctx === ctx);
    if (!c || !c.pending!.attempts.has(node)) return false;
    c.pending!.op.output = lookup(c.pending!.op.key);
    c.pending!.op.response = now;
    c.pending = undefined;
    return true;
  }

  /** `node` went down: nothing it was asked will be answered from there. */
  lost(node: string): void {
    for (const c of this.#clients) c.pending?.attempts.delete(node);
  }
}
