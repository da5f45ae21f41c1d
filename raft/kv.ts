/**
 * A replicated key-value map, the state machine of the simulator and of the
 * Raft server (raft/server.ts): its writes come in client sessions
 * (raft/session.ts), so a retried write applies once. Its state, sessions
 * included, is what a snapshot holds.
 */

import type { StateMachine } from "./driver.ts";
import { type SessionOutcome, type SessionRecord, SessionTable } from "./session.ts";
import type { Entry } from "./types.ts";

/** A client's write, as it travels in a log entry's data. */
export interface Put {
  key: string;
  value: string;
}

export function encodePut(put: Put): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(put));
}

export class Kv {
  readonly kv: Map<string, string>;
  readonly sessions: SessionTable<string>;
  /** Test-only: apply every write, retries included (the bug sessions exist to prevent). */
  readonly #noDedup: boolean;

  constructor(noDedup = false, kv = new Map<string, string>(), sessions: SessionRecord<string>[] = []) {
    this.kv = kv;
    this.sessions = new SessionTable(sessions);
    this.#noDedup = noDedup;
  }

  /** Applies a committed entry; a write's outcome says whether it took effect. */
  apply(e: Entry): SessionOutcome<string> | undefined {
    if (e.kind !== "normal") return undefined;
    const put = JSON.parse(new TextDecoder().decode(e.data)) as Put;
    const write = () => {
      this.kv.set(put.key, put.value);
      return "ok";
    };
    if (e.client === undefined || e.seq === undefined || this.#noDedup) return { status: "applied", result: write() };
    return this.sessions.apply(e.client, e.seq, write);
  }

  encode(): Uint8Array {
    return new TextEncoder().encode(this.digest());
  }

  /** The whole state as text: equal states, equal digests. */
  digest(): string {
    return JSON.stringify({ kv: [...this.kv].sort(), sessions: this.sessions.records() });
  }

  static decode(data: Uint8Array, noDedup = false): Kv {
    const s = JSON.parse(new TextDecoder().decode(data)) as {
      kv: [string, string][];
      sessions: SessionRecord<string>[];
    };
    return new Kv(noDedup, new Map(s.kv), s.sessions);
  }
}

/** A Kv as the driver's state machine: a snapshot replaces it whole. */
export class KvMachine implements StateMachine<SessionOutcome<string> | undefined> {
  kv = new Kv();

  apply(entry: Entry): SessionOutcome<string> | undefined {
    return this.kv.apply(entry);
  }

  snapshot(): Uint8Array {
    return this.kv.encode();
  }

  restore(data: Uint8Array): void {
    this.kv = Kv.decode(data);
  }
}
