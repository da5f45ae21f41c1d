/**
 * The control plane's state machine: every change of desired state is a
 * command committed to the Raft log, and this is the one place that applies
 * them, into the SQLite tables the API, the triggers and the proxy read. Each
 * entry is applied in one transaction together with its index, so after a
 * crash the log is applied from exactly where the tables stopped. Applying is
 * deterministic: a command carries its own time and versions, and nothing
 * here reads the clock or the runtime.
 *
 * Module and file bytes stay out of the log: commands reference them by hash.
 */

import { OrcaError } from "../errors.ts";
import type { Entry, StateMachine } from "../raft/mod.ts";
import { parseTrigger } from "../config/mod.ts";
import { EventBus } from "../triggers/events.ts";
import type { CronRun } from "../triggers/cron_scheduler.ts";
import { fromBase64 } from "../runtime/mod.ts";
import { QueueStore } from "./queue_store.ts";
import { RunStore } from "./run_store.ts";
import type { NodeFacts } from "./node_facts.ts";
import {
  loadReplicaStates,
  type Placements,
  PLACEMENTS_SCHEMA,
  REPLICA_STATES_SCHEMA,
  type ReplicaReport,
  writePlacements,
  writeReplicaStates,
} from "./placement_store.ts";
import {
  dumpState,
  encodeSnapshot,
  type MemberRecord,
  readMembers,
  type SnapshotData,
  snapshotInWorker,
  type TakenSnapshot,
} from "./snapshot.ts";
import type { DeploySummary, Store, StoredService } from "./store.ts";
import { endRollout, forgetRollouts, loadRollouts, ROLLOUTS_SCHEMA, writeCanaries } from "./rollout_store.ts";
import { HISTORY_SCHEMA, loadVersions, writeVersions } from "./history.ts";
import { splitKey } from "./deploy_request.ts";
import { applyCert, type CertCommand, CERTS_SCHEMA, loadCerts } from "./cert_store.ts";
import { applySecret, loadSecrets, type SecretCommand, SECRETS_SCHEMA } from "./secret_store.ts";

/** A change of desired state, as it travels in a log entry. */
export type ControlCommand =
  | {
    type: "deploy";
    /** When the deploy was made (the proposer's clock: every member applies the same time). */
    at: number;
    upserts: StoredService[];
    removals: { project: string; name: string }[];
    summary: DeploySummary;
    /** The placements of every service whose placements changed (the leader's plan); absent: none changed. */
    placements?: Placements;
    /** New versions that start as canaries beside the running ones (`[service.rollout]`). */
    canaries?: StoredService[];
  }
  /** A canary's analysis ended (the leader decided): promoted to be its service's version, or dropped. */
  | {
    type: "rollout-end";
    service: string;
    version: number;
    outcome: "promoted" | "rolled_back";
    reason: string;
    at: number;
  }
  /** Placements changed outside a deploy (the leader's upkeep: replicas of a lost node moved, missing ones placed). */
  | { type: "place"; at: number; placements: Placements; reason: string }
  /** A node's workloads: ready (at a version) or failed, and services it runs no more. */
  | { type: "replica-states"; node: string; at: number; states: ReplicaReport[]; gone: string[] }
  /** A server's address, and what it offers the scheduler (absent: kept as registered). */
  | { type: "member"; id: string; address: string; at: number; facts?: NodeFacts }
  /** A node is drained (its replicas move off it, one at a time, and it gets no new one) or back in service. */
  | { type: "drain"; id: string; drain: boolean }
  /** A server left the cluster. */
  | { type: "member-removed"; id: string }
  /** Messages appended to a topic (bodies in base64), at the proposer's time. */
  | { type: "queue-publish"; topic: string; bodies: string[]; meta: Record<string, string>; at: number }
  /** A consumer handled every message of its topic through `id`. */
  | { type: "queue-ack"; topic: string; consumer: string; id: number }
  /** The message after a consumer's cursor failed; retried not before `notBefore`. */
  | { type: "queue-retry"; topic: string; consumer: string; attempts: number; notBefore: number; error: string }
  /** A message failed for good for a consumer: a dead letter. */
  | {
    type: "queue-dead";
    topic: string;
    consumer: string;
    messageId: number;
    attempts: number;
    error: string;
    at: number;
  }
  /** A cron firing claimed before it runs: applied true once per (job, firing) cluster-wide. */
  | { type: "cron-claim"; service: string; trigger: string; at: number }
  /** A cron run that ended (or was skipped), for `orca runs`. */
  | { type: "cron-run"; run: CronRun }
  /** Certificates, ACME challenges and accounts (cert_store.ts). */
  | CertCommand
  /** Secrets, sealed (secret_store.ts). */
  | SecretCommand;

/** What a listener hears changed: the kinds of command applied, or a whole snapshot installed. */
export type Change = ControlCommand["type"] | "snapshot";

/** What applying a command gave: its value, or the error every member hit alike. */
export type CommandResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { code: OrcaError["code"]; message: string } };

export type { MemberRecord } from "./snapshot.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: ControlCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

const schema = `
CREATE TABLE IF NOT EXISTS raft_applied (
  id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, address TEXT NOT NULL, at INTEGER NOT NULL, facts TEXT,
  drain INTEGER NOT NULL DEFAULT 0);
`;

export class ControlMachine implements StateMachine<CommandResult> {
  readonly #store: Store;
  readonly #queues: QueueStore;
  readonly #runs: RunStore;
  readonly #listeners: ((changed: ReadonlySet<Change>) => void)[] = [];
  /** The members table as last read; cleared when a command changes it. */
  #members?: MemberRecord[];
  #index: number;
  #term: number;

  constructor(store: Store) {
    this.#store = store;
    store.db.exec(
      schema + PLACEMENTS_SCHEMA + REPLICA_STATES_SCHEMA + ROLLOUTS_SCHEMA + HISTORY_SCHEMA + CERTS_SCHEMA +
        SECRETS_SCHEMA,
    );
    // Stores made before the registry held facts lack the columns.
    const columns = store.db.prepare("SELECT name FROM pragma_table_info('members')").all() as { name: string }[];
    if (!columns.some((c) => c.name === "facts")) {
      store.db.exec(
        "ALTER TABLE members ADD COLUMN facts TEXT; ALTER TABLE members ADD COLUMN drain INTEGER NOT NULL DEFAULT 0;",
      );
    }
    this.#queues = new QueueStore(store);
    this.#runs = new RunStore(store);
    const row = store.db.prepare("SELECT idx, term FROM raft_applied WHERE id = 1").get() as
      | { idx: number; term: number }
      | undefined;
    this.#index = row?.idx ?? 0;
    this.#term = row?.term ?? 0;
  }

  /**
   * Calls `listener` after commands were applied (with the kinds of command that took effect) and after a snapshot
   * was installed (`snapshot`: everything may have changed).
   */
  onApplied(listener: (changed: ReadonlySet<Change>) => void): void {
    this.#listeners.push(listener);
  }

  /** The servers registered, by id (read once per change: a follower asks on every write it forwards). */
  members(): MemberRecord[] {
    return this.#members ??= readMembers((text) => this.#store.sql(text));
  }

  /** The last entry applied, durably (stored with what it applied). */
  applied(): number {
    return this.#index;
  }

  apply(entry: Entry): CommandResult {
    return this.applyAll([entry])[0];
  }

  /** Applies committed entries in one transaction, with the index of the last. */
  applyAll(entries: Entry[]): CommandResult[] {
    // The log is durable (fsynced before anything commits): what it applies needs no fsync of its own. Lost in a
    // power cut, it is applied again from the log, since the applied index goes in the same transaction. Inside
    // the transaction that stores the entries (a lone server's), it commits with them: one fsync for both.
    const db = this.#store.db;
    const alone = !db.isTransaction;
    if (alone) db.exec("PRAGMA synchronous = NORMAL");
    const changed = new Set<Change>();
    const run = () => {
      const results = entries.map((e) => {
        if (e.kind !== "normal") return { ok: true as const, value: undefined };
        const { result, type } = this.#guarded(e.data);
        if (result.ok && type) changed.add(type);
        return result;
      });
      const last = entries[entries.length - 1];
      this.#setApplied(last.index, last.term);
      return results;
    };
    let results: CommandResult[];
    try {
      // Inside the driver's transaction a failure here fails it whole: no savepoint of its own is needed.
      results = alone ? this.#store.transaction(run) : run();
    } finally {
      if (alone) db.exec("PRAGMA synchronous = FULL");
    }
    if (changed.has("member") || changed.has("member-removed") || changed.has("drain")) this.#members = undefined;
    if (changed.size > 0) { for (const listener of this.#listeners) listener(changed); }
    return results;
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(dumpState((text) => this.#store.sql(text))).data;
  }

  /** A snapshot taken on a worker thread (the server goes on meanwhile), with the index it was applied through. */
  snapshotAsync(): Promise<TakenSnapshot> {
    return snapshotInWorker(this.#store.path);
  }

  restore(bytes: Uint8Array): void {
    const data = JSON.parse(decoder.decode(bytes)) as SnapshotData;
    if (data.v !== 1) throw new Error(`snapshot format ${data.v} is not one this version reads`);
    const db = this.#store.db;
    this.#store.transaction(() => {
      db.exec(
        "DELETE FROM services; DELETE FROM deploys; DELETE FROM members; DELETE FROM placements; DELETE FROM replica_states;",
      );
      this.#store.forgetServices();
      writePlacements((text) => this.#store.sql(text), data.placements ?? {});
      loadReplicaStates((text) => this.#store.sql(text), data.replicaStates ?? {});
      const member = this.#store.sql("INSERT INTO members (id, address, at, facts, drain) VALUES (?, ?, ?, ?, ?)");
      for (const m of data.members ?? []) {
        member.run(m.id, m.address, m.at, m.facts ? JSON.stringify(m.facts) : null, m.drain ? 1 : 0);
      }
      const service = this.#store.sql(
        "INSERT INTO services (project, name, version, spec, updated_at) VALUES (?, ?, ?, ?, ?)",
      );
      for (const s of data.services) service.run(s.project, s.name, s.version, s.spec, s.updated_at);
      const deploy = this.#store.sql("INSERT INTO deploys (id, at, summary) VALUES (?, ?, ?)");
      for (const d of data.deploys) deploy.run(d.id, d.at, d.summary);
      loadVersions((text) => this.#store.sql(text), data.versions ?? []);
      loadRollouts((text) => this.#store.sql(text), data.rollouts ?? []);
      loadCerts((text) => this.#store.sql(text), data.certs);
      loadSecrets((text) => this.#store.sql(text), data.secrets ?? []);
      this.#queues.load(data.queues ?? { messages: [], cursors: [], dead: [] });
      this.#runs.load(data.runs ?? { state: [], runs: [] });
      for (const { name, seq } of data.sequences ?? []) {
        this.#store.sql("DELETE FROM sqlite_sequence WHERE name = ?").run(name);
        this.#store.sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)").run(name, seq);
      }
      this.#setApplied(data.applied.index, data.applied.term);
    });
    this.#members = undefined;
    for (const listener of this.#listeners) listener(new Set(["snapshot"]));
  }

  /**
   * Applies one entry's command in a savepoint: a command that fails (a constraint, bad data) fails alike on every
   * member and is undone alone, its error the proposer's answer, so one bad entry never stops the cluster. A disk
   * that fails (I/O, full, corrupt) is still thrown: nothing after it can be trusted.
   */
  #guarded(data: Uint8Array): { result: CommandResult; type?: ControlCommand["type"] } {
    const db = this.#store.db;
    // Prepared once (exec parses its text each time): every command of every entry passes here.
    this.#store.sql("SAVEPOINT command").run();
    try {
      const applied = this.#run(data);
      this.#store.sql("RELEASE command").run();
      return applied;
    } catch (err) {
      const code = (err as { errcode?: number }).errcode;
      if (code !== undefined && [10, 11, 13].includes(code & 0xff)) throw err; // the whole transaction goes
      this.#store.forgetServices();
      db.exec("ROLLBACK TO command; RELEASE command");
      return {
        result: { ok: false, error: { code: "internal", message: `command failed: ${(err as Error).message}` } },
      };
    }
  }

  /** Applies one entry's command; an error is part of the result (every member meets it alike), never thrown. */
  #run(data: Uint8Array): { result: CommandResult; type?: ControlCommand["type"] } {
    let command: ControlCommand;
    try {
      command = JSON.parse(decoder.decode(data)) as ControlCommand;
    } catch {
      const message = "a log entry is not a command this version reads";
      return { result: { ok: false, error: { code: "internal", message } } };
    }
    return { result: this.#execute(command), type: command.type };
  }

  #execute(command: ControlCommand): CommandResult {
    switch (command.type) {
      case "deploy": {
        const sql = (text: string) => this.#store.sql(text);
        const canaries = command.canaries ?? [];
        const from = Object.fromEntries(canaries.map((c) => [keyOf(c), this.#versionOf(keyOf(c))]));
        const id = this.#store.writeDeploy(command.upserts, command.removals, command.summary, command.at);
        writeVersions(sql, id, [...command.upserts, ...canaries], command.at);
        writeCanaries(sql, id, canaries, from);
        // A service removed, or deployed whole, ends a canary of it that was under way.
        forgetRollouts(sql, command.removals.map((r) => `${r.project}/${r.name}`));
        forgetRollouts(sql, command.upserts.map(keyOf), "analysing");
        writePlacements(sql, Object.fromEntries(command.removals.map((r) => [`${r.project}/${r.name}`, []])));
        const forget = sql("DELETE FROM replica_states WHERE service = ?");
        for (const r of command.removals) forget.run(`${r.project}/${r.name}`);
        if (command.placements) writePlacements(sql, command.placements);
        const services = this.#store.services();
        const deployed = new Set(services.map((s) => keyOf(s)));
        this.#queues.applyConsumers(consumersOf(services), deployed);
        this.#runs.applyForget(deployed);
        return { ok: true, value: id };
      }
      case "rollout-end":
        return { ok: true, value: this.#endRollout(command) };
      case "queue-publish":
        return {
          ok: true,
          value: this.#queues.applyPublish(command.topic, command.bodies.map(fromBase64), command.meta, command.at),
        };
      case "place":
        writePlacements((text) => this.#store.sql(text), command.placements);
        return { ok: true, value: undefined };
      case "replica-states":
        writeReplicaStates((text) => this.#store.sql(text), command.node, command.at, command.states, command.gone);
        return { ok: true, value: undefined };
      case "cron-claim":
        return { ok: true, value: this.#runs.applyClaim(command.service, command.trigger, command.at) };
      case "cron-run":
        this.#runs.applyRun(command.run);
        return { ok: true, value: undefined };
      case "queue-ack":
        this.#queues.applyAck(command.topic, command.consumer, command.id);
        return { ok: true, value: undefined };
      case "queue-retry":
        this.#queues.applyRetry(command.topic, command.consumer, command.attempts, command.notBefore, command.error);
        return { ok: true, value: undefined };
      case "queue-dead":
        this.#queues.applyDead(
          command.topic,
          command.consumer,
          command.messageId,
          command.attempts,
          command.error,
          command.at,
        );
        return { ok: true, value: undefined };
      case "member":
        this.#store.sql(
          `INSERT INTO members (id, address, at, facts) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
             address = excluded.address, at = excluded.at, facts = COALESCE(excluded.facts, members.facts)`,
        ).run(command.id, command.address, command.at, command.facts ? JSON.stringify(command.facts) : null);
        return { ok: true, value: undefined };
      case "drain":
        this.#store.sql("UPDATE members SET drain = ? WHERE id = ?").run(command.drain ? 1 : 0, command.id);
        return { ok: true, value: undefined };
      case "member-removed":
        this.#store.sql("DELETE FROM members WHERE id = ?").run(command.id);
        this.#store.sql("DELETE FROM replica_states WHERE node = ?").run(command.id);
        return { ok: true, value: undefined };
      case "cert-issued":
      case "cert-failed":
      case "cert-removed":
      case "acme-challenge":
      case "acme-account":
        applyCert((text) => this.#store.sql(text), command);
        return { ok: true, value: undefined };
      case "secret-set":
      case "secret-removed":
        applySecret((text) => this.#store.sql(text), command);
        return { ok: true, value: undefined };
      default:
        return {
          ok: false,
          error: {
            code: "internal",
            message: `unknown command ${JSON.stringify((command as { type: unknown }).type)}`,
          },
        };
    }
  }

  /** Ends a canary as the leader decided; the deploy that records it (null when it had ended, or was replaced). */
  #endRollout(c: Extract<ControlCommand, { type: "rollout-end" }>): number | null {
    const sql = (text: string) => this.#store.sql(text);
    const row = sql("SELECT spec FROM rollouts WHERE service = ? AND version = ? AND state = 'analysing'").get(
      c.service,
      c.version,
    ) as { spec: string } | undefined;
    if (!row || !endRollout(sql, c.service, c.version, c.outcome, c.reason, c.at)) return null;
    const promoted = c.outcome === "promoted";
    const upserts = promoted ? [{ spec: JSON.parse(row.spec), version: c.version, updatedAt: c.at }] : [];
    const what = promoted ? "promoted" : "rolled back";
    const summary: DeploySummary = {
      created: [],
      updated: [],
      removed: [],
      unchanged: [],
      origin: `canary v${c.version} of ${c.service} ${what}: ${c.reason}`,
      rollout: { service: c.service, version: c.version, outcome: c.outcome },
    };
    // The promoted version is in the history already, as the canary its deploy made.
    return this.#store.writeDeploy(upserts, [], summary, c.at);
  }

  #versionOf(service: string): number {
    const row = this.#store.sql("SELECT version FROM services WHERE project = ? AND name = ?").get(
      ...splitKey(service),
    ) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  #setApplied(index: number, term: number): void {
    this.#store.sql(
      "INSERT INTO raft_applied (id, idx, term) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, term = excluded.term",
    ).run(index, term);
    this.#index = index;
    this.#term = term;
  }
}

function keyOf(s: StoredService): string {
  return `${s.spec.project}/${s.spec.name}`;
}

/** The (topic, consumer) pairs the services declare: queue triggers, and each event subscriber's inbox. */
export function consumersOf(services: StoredService[]): { topic: string; consumer: string }[] {
  const out: { topic: string; consumer: string }[] = [];
  for (const s of services) {
    const consumer = keyOf(s);
    let inbox = false;
    for (const trigger of s.spec.triggers) {
      const t = parseTrigger(trigger);
      if ("error" in t) continue;
      if (t.type === "queue") out.push({ topic: t.topic, consumer });
      if (t.type === "event" && !inbox) {
        out.push({ topic: EventBus.inbox(consumer), consumer });
        inbox = true;
      }
    }
  }
  return out;
}
