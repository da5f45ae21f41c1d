/**
 * Raft consensus for the control plane: the contracts the I/O-free core is
 * built against (log storage, transport). The core, its SQLite store, the
 * real transport and the deterministic simulator build on these.
 *
 * @module
 */

export type { Entry, HardState, LogStore, Transport } from "./types.ts";
