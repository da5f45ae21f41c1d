/**
 * Raft consensus for the control plane: the I/O-free core (election and log
 * replication so far), the contracts it is driven through (log storage,
 * transport), the in-memory and SQLite log stores, and a deterministic
 * simulator that checks its safety.
 *
 * @module
 */

export type { Entry, HardState, LogStore, Transport } from "./types.ts";
export { type Message, RaftNode, type RaftOptions, type Ready, type Role } from "./core.ts";
export { InvariantViolation, seeded, type SimOptions, Simulation } from "./sim.ts";
