/**
 * Raft consensus for the control plane: the I/O-free core (election, log
 * replication, ReadIndex reads, leadership transfer, membership changes by
 * joint consensus, snapshots), the contracts it is driven through (log
 * storage, transport), the in-memory and SQLite log stores, client sessions
 * for a state machine that applies a retried write once, and a deterministic
 * simulator that checks its safety and liveness under faults. For running it
 * between processes: the WebSocket transport, the driver, and a key-value
 * server (raft/server.ts).
 *
 * @module
 */

export type { Config, Entry, HardState, LogStore, Snapshot, StoreWrite, Transport } from "./types.ts";
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
export { MemoryLogStore } from "./memory_store.ts";
export { SqliteLogStore } from "./sqlite_store.ts";
export { StoreError, WorkerLogStore } from "./worker_store.ts";
export { CodecError, decodeFrame, encodeFrame } from "./codec.ts";
export { raftPath, type TransportStats, WebSocketTransport, type WebSocketTransportOptions } from "./transport.ts";
export {
  ConfigChangeError,
  type DriverOptions,
  type DriverStats,
  NotLeaderError,
  RaftDriver,
  type StateMachine,
  TimeoutError,
} from "./driver.ts";
export { Kv, KvMachine } from "./kv.ts";
