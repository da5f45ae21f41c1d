/**
 * The state machine's snapshots: the whole desired state at one applied
 * index (services, deploy history, members, queues, runs, id counters), as
 * JSON. A snapshot is taken on a worker thread with a connection of its own
 * (snapshot_worker.ts): one read transaction sees the tables and the applied
 * index of one commit (WAL), while the server goes on writing. Dumping a
 * large state (100,000 queued messages: about 0.6 s) would otherwise stop the
 * server, and a leader stopped that long loses its followers.
 */

import type { StatementSync } from "node:sqlite";
import type { NodeFacts } from "./node_facts.ts";
import { type Placements, readPlacements, readReplicaStates, type ReplicaStates } from "./placement_store.ts";
import { dumpQueues, type QueueTables } from "./queue_store.ts";
import { dumpRuns, type RunTables } from "./run_store.ts";
import { dumpRollouts, type RolloutRows } from "./rollout_store.ts";
import { dumpVersions, type VersionRows } from "./history.ts";
import { type CertRows, dumpCerts } from "./cert_store.ts";
import { dumpSecrets, type SecretRows } from "./secret_store.ts";

/** A server of the cluster as the registry holds it. */
export interface MemberRecord {
  id: string;
  /** Where its peers and clients reach it (its API: `host:port`). */
  address: string;
  /** When it was registered (or its record last changed). */
  at: number;
  /** Its labels, capacity and GPUs, once it told them. */
  facts?: NodeFacts;
  /** Whether it is drained: the scheduler places nothing new there. */
  drain: boolean;
}

/** The registry, by id. */
export function readMembers(sql: (text: string) => StatementSync): MemberRecord[] {
  const rows = sql("SELECT id, address, at, facts, drain FROM members ORDER BY id").all() as {
    id: string;
    address: string;
    at: number;
    facts: string | null;
    drain: number;
  }[];
  return rows.map((r) => ({
    id: r.id,
    address: r.address,
    at: r.at,
    ...(r.facts !== null && { facts: JSON.parse(r.facts) as NodeFacts }),
    drain: r.drain === 1,
  }));
}

/** The whole desired state, as a snapshot holds it. */
export interface SnapshotData {
  v: 1;
  applied: { index: number; term: number };
  services: { project: string; name: string; version: number; spec: string; updated_at: number }[];
  deploys: { id: number; at: number; summary: string }[];
  /** Canaries under way, and the last outcome of each service's (rollout_store.ts). */
  rollouts?: RolloutRows;
  /** The versions of each service kept for rollback (history.ts). */
  versions?: VersionRows;
  members?: MemberRecord[];
  /** Where each placed service's replicas run. */
  placements?: Placements;
  /** What each node said of its workloads. */
  replicaStates?: ReplicaStates;
  queues?: QueueTables;
  runs?: RunTables;
  /** Certificates, challenges under way and (a server's) ACME accounts (cert_store.ts). */
  certs?: CertRows;
  /** Secrets, sealed (secret_store.ts); every node needs them to start the services that reference them. */
  secrets?: SecretRows;
  /** AUTOINCREMENT counters: ids handed out (deploys, messages) are never handed out again after a restore. */
  sequences?: { name: string; seq: number }[];
}

/** A snapshot's bytes and the index it was applied through. */
export interface TakenSnapshot {
  index: number;
  data: Uint8Array;
}

const encoder = new TextEncoder();

/** Reads the whole state (inside one read transaction of the caller's, for a consistent one). */
export function dumpState(sql: (text: string) => StatementSync): SnapshotData {
  return {
    ...dumpView(sql),
    deploys: sql("SELECT id, at, summary FROM deploys ORDER BY id").all() as SnapshotData["deploys"],
    versions: dumpVersions(sql),
    certs: dumpCerts(sql, true),
    queues: dumpQueues(sql),
    runs: dumpRuns(sql),
    sequences: sql("SELECT name, seq FROM sqlite_sequence ORDER BY name").all() as SnapshotData["sequences"],
  };
}

/**
 * What a worker node runs from: the services, the registry, the placements and replica states, the certificates, the
 * sealed secrets, at
 * one applied index; no queues, runs or deploy history (the servers keep those).
 */
export function dumpView(sql: (text: string) => StatementSync): SnapshotData {
  const applied = sql("SELECT idx, term FROM raft_applied WHERE id = 1").get() as
    | { idx: number; term: number }
    | undefined;
  return {
    v: 1,
    applied: { index: applied?.idx ?? 0, term: applied?.term ?? 0 },
    services: sql("SELECT project, name, version, spec, updated_at FROM services ORDER BY project, name")
      .all() as SnapshotData["services"],
    deploys: [],
    members: readMembers(sql),
    placements: readPlacements(sql),
    replicaStates: readReplicaStates(sql),
    rollouts: dumpRollouts(sql),
    certs: dumpCerts(sql, false),
    secrets: dumpSecrets(sql),
  };
}

export function encodeSnapshot(data: SnapshotData): TakenSnapshot {
  return { index: data.applied.index, data: encoder.encode(JSON.stringify(data)) };
}

/** What the worker answers. */
export type WorkerAnswer = TakenSnapshot | { error: string };

/**
 * Takes a snapshot of the database at `path` on a worker thread (started for it, ended after: snapshots are rare);
 * resolves with the index it holds the state of.
 */
export function snapshotInWorker(path: string): Promise<TakenSnapshot> {
  const worker = new Worker(new URL("./snapshot_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise<TakenSnapshot>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<WorkerAnswer>) => {
      if ("error" in e.data) reject(new Error(`snapshot failed: ${e.data.error}`));
      else resolve(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`snapshot worker failed: ${e.message}`));
    };
    worker.postMessage({ path });
  }).finally(() => worker.terminate());
}
