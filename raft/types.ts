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
}

/** What must be on disk before a node answers a vote or an append. */
export interface HardState {
  term: number;
  /** Node voted for in `term`, or undefined. */
  vote?: string;
  commit: number;
}

/**
 * Durable log storage. Contract:
 * - `append` may overwrite a suffix: entries at or after the first appended
 *   index are replaced; it is durable when the promise resolves (fsync done).
 * - `setHardState` is durable when it resolves.
 * - Indexes below `firstIndex()` were compacted into a snapshot.
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
}

/** Delivers messages between nodes; authenticated with the cluster token in real implementations. */
export interface Transport<M> {
  send(to: string, message: M): void;
  onMessage(handler: (from: string, message: M) => void): void;
  close(): Promise<void>;
}
