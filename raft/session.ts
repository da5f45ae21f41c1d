/**
 * Client sessions for a replicated state machine: a client numbers its writes
 * 1, 2, 3, ... and retries a write with the same number until it hears back,
 * so the same write may be in the log more than once. The state machine runs
 * each (client, seq) once and answers a retry with the result it remembered.
 * Sessions are part of the state machine's state, so they go into snapshots.
 */

/** What became of one write. */
export type SessionOutcome<R> =
  /** First time seen: it ran. */
  | { status: "applied"; result: R }
  /** A retry of the latest write: it did not run again; here is what it returned then. */
  | { status: "duplicate"; result: R }
  /** Older than the client's latest write (the client has moved on, so nobody waits for it): not run. */
  | { status: "stale" };

export interface SessionRecord<R> {
  client: string;
  seq: number;
  result: R;
}

export class SessionTable<R> {
  readonly #last = new Map<string, { seq: number; result: R }>();

  constructor(records: readonly SessionRecord<R>[] = []) {
    for (const r of records) this.#last.set(r.client, { seq: r.seq, result: r.result });
  }

  /** Runs `write` unless this (client, seq) already ran. Call it in log order, on every replica alike. */
  apply(client: string, seq: number, write: () => R): SessionOutcome<R> {
    const last = this.#last.get(client);
    if (last && seq < last.seq) return { status: "stale" };
    if (last && seq === last.seq) return { status: "duplicate", result: last.result };
    const result = write();
    this.#last.set(client, { seq, result });
    return { status: "applied", result };
  }

  /** The latest write applied for `client`, if any. */
  last(client: string): { seq: number; result: R } | undefined {
    return this.#last.get(client);
  }

  /** Every client's latest write, by client id: what a snapshot keeps. */
  records(): SessionRecord<R>[] {
    return [...this.#last].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([client, r]) => ({ client, ...r }));
  }
}
