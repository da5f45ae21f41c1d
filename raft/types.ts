/**
 * The contracts the Raft core is built against (etcd-io/raft's shape): the
 * core does no I/O; a driver persists entries and hard state through a
 * `LogStore`, sends messages through a `Transport`, applies committed entries,
 * then tells the core it is done.
 */

/** A log entry. `index` starts at 1; `term` never decreases along the log. */
export interface Entry {
  index: number;
  term: number;
  kind: "normal" | "noop" | "config";
  data: Uint8Array;
  /** The client session a write belongs to (raft/session.ts): a retried write carries the same `seq`. */
  client?: string;
  seq?: number;
}

/** Who votes and who only follows. Joint while `outgoing` is set: decisions then need a majority of each voter set. */
export interface Config {
  /** The voters (the incoming voters while joint). */
  voters: string[];
  /** While joint: the voters of the configuration being left. */
  outgoing?: string[];
  /** Members that receive the log but never vote or count for quorum. */
  learners: string[];
}

/** A state machine's state at `index`, and what is needed to go on from there: the term there and the config in force. */
export interface Snapshot {
  index: number;
  term: number;
  config: Config;
  data: Uint8Array;
}

/** What must be on disk before a node answers a vote or an append. */
export interface HardState {
  term: number;
  /** Node voted for in `term`, or undefined. */
  vote?: string;
  commit: number;
}

/**
 * Durable log storage. Contract (raft/store_contract.ts checks every
 * implementation against it):
 * - A new store has hard state {term: 0, commit: 0}, firstIndex 1, lastIndex 0.
 * - `append` takes consecutive entries starting at most at lastIndex + 1; entries
 *   at or after the first appended index are replaced. Durable when it resolves.
 * - `setHardState` is durable when it resolves.
 * - `entries(from, to)` returns [from, to), at least one entry even past
 *   `maxBytes`; asking below firstIndex or past lastIndex throws.
 * - `compact(upTo)` drops entries up to `upTo`; `term(upTo)` stays known.
 * - `saveSnapshot(s)` is durable when it resolves and compacts up to `s.index`: `firstIndex` becomes
 *   `s.index + 1` and `term(s.index)` is `s.term`. Entries after `s.index` stay only if the log holds `s.index`
 *   with `s.term` (the log continues the snapshot); otherwise the whole log goes. A snapshot no newer than
 *   the saved one is ignored. `snapshot()` returns the saved one (survives a reopen).
 * - `persist(w)` does what `saveSnapshot(w.snapshot)`, `append(w.entries)` and `setHardState(w.hardState)`
 *   would, in that order, as one durable write (one fsync per Ready): after a crash, all of it or none.
 * - Entries keep their `client` and `seq` when set.
 * - Any I/O error rejects; the driver must then stop the node.
 */
export interface LogStore {
  hardState(): HardState;
  setHardState(state: HardState): Promise<void>;
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number | undefined;
  entries(from: number, to: number, maxBytes?: number): Entry[];
  append(entries: readonly Entry[]): Promise<void>;
  compact(upTo: number): Promise<void>;
  snapshot(): Snapshot | undefined;
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  persist(write: StoreWrite): Promise<void>;
  /**
   * A store that writes on the caller's thread offers this: `persist` done before it returns. Sharing a database
   * with the state machine, it joins a transaction open there: durable when that one commits.
   */
  persistNow?(write: StoreWrite): void;
}

/** What one Ready asks to persist (raft/messages.ts): written together. */
export interface StoreWrite {
  snapshot?: Snapshot;
  entries: readonly Entry[];
  hardState?: HardState;
}

/** Delivers messages between nodes; authenticated with the cluster token in real implementations. */
export interface Transport<M> {
  send(to: string, message: M): void;
  /** Sends what `send` queued now rather than at the end of the current task (optional: a transport may not queue). */
  flush?(): void;
  onMessage(handler: (from: string, message: M) => void): void;
  close(): Promise<void>;
}

/** What the driver applies committed entries to. */
export interface StateMachine<R> {
  /** Applies a committed entry (every kind, in log order); the result goes to whoever proposed it. */
  apply(entry: Entry): R;
  /** The whole state, for a snapshot. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot's. */
  restore(data: Uint8Array): void;
  /**
   * The last index this machine applied durably, for a machine that stores its state with its applied index in
   * one transaction: after a restart the driver applies only what comes after it. Without it, the machine is
   * rebuilt from the snapshot and the log at every start.
   */
  applied?(): number;
  /** Applies several committed entries in order (one transaction, say); results in the same order. */
  applyAll?(entries: Entry[]): R[];
  /**
   * Takes a snapshot off this thread, of the state at an index it names (a machine with a large state: the node
   * goes on while it is made). Once one fails, `snapshot` is used instead.
   */
  snapshotAsync?(): Promise<{ index: number; data: Uint8Array }>;
}
