/**
 * Raft consensus for the control plane: the I/O-free core (election, log
 * replication, ReadIndex reads, leadership transfer, membership changes by
 * joint consensus, snapshots), the contracts it is driven through (log
 * storage, transport), the in-memory and SQLite log stores, client sessions
 * for a state machine that applies a retried write once, and a deterministic
 * simulator that checks its safety and liveness under faults.
 *
 * @module
 */

export type { Config, Entry, HardState, LogStore, Snapshot, Transport } from "./types.ts";
export {
  type ChangeResult,
  type ConfigChange,
  type Message,
  type RaftBug,
  RaftNode,
  type RaftOptions,
  type Ready,
  type Role,
} from "./core.ts";
export { decodeConfig, encodeConfig, isJoint, isVoter, members } from "./config.ts";
export { type SessionOutcome, type SessionRecord, SessionTable } from "./session.ts";
export { allFaults, InvariantViolation, seeded, type SimOptions, Simulation } from "./sim.ts";
