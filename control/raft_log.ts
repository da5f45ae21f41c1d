/**
 * The control plane's Raft log: every change of desired state is proposed
 * here, committed (stored durably on a quorum), then applied by the one state
 * machine (machine.ts) before the caller hears back. A lone server is a
 * one-member cluster: the same path, with no peers to wait for.
 *
 * The log lives in the state's database (`$ORCA_HOME/orca.db`: SQLite, WAL,
 * synchronous=FULL), next to what it applies and the index of the last entry
 * applied: each turn of the driver stores new entries and applies those that
 * commit in one transaction, so a lone server pays one fsync per batch of
 * writes, as it would without a log. Peers talk over the API port, at
 * `/api/v1/raft`, with the cluster token; the registry of members (applied
 * from the log) says where each one is.
 */

import { OrcaError } from "../errors.ts";
import {
  ConfigChangeError,
  NotLeaderError,
  RaftDriver,
  SqliteLogStore,
  TimeoutError,
  WebSocketTransport,
} from "../raft/mod.ts";
import {
  type Change,
  type CommandResult,
  type ControlCommand,
  ControlMachine,
  encodeCommand,
  type MemberRecord,
} from "./machine.ts";
import type { Store } from "./store.ts";

/** Where peers reach a server's end of the transport. */
export const PEER_PATH = "/api/v1/raft";

export interface ControlLogOptions {
  home: string;
  /** This member's id (the node id). */
  id: string;
  store: Store;
  /** The cluster token peers present. */
  token: string;
  /**
   * `bootstrap`: this server starts a cluster (or is a lone server): it is the first voter. `join`: it was just
   * added as a learner, and waits for the leader to send it the log. A server with a log of its own ignores this.
   */
  mode: "bootstrap" | "join";
  /** Peers to dial until the registry in the log names them (a joiner's: what the leader told it). */
  peers?: Record<string, string>;
  /** The store failed: the process must stop (nothing may be acknowledged that is not stored). */
  onFatal(err: unknown): void;
  /** Where to say what the operator should know (a peer refused). */
  log?: (line: string) => void;
  /** Take a snapshot (and compact the log) every this many entries (default 10,000). */
  snapshotEvery?: number;
  /** How long a proposal may take before the caller is told its outcome is unknown (default 10 s). */
  timeoutMs?: number;
}

/** What a member says of itself. */
export interface MemberStatus {
  id: string;
  role: string;
  leader?: string;
  term: number;
  commit: number;
  applied: number;
  /** The last entry the log was compacted at (0: never). */
  snapshot: number;
  voters: string[];
  learners: string[];
}

export class ControlLog {
  readonly #driver: RaftDriver<CommandResult>;
  readonly #store: SqliteLogStore;
  readonly #machine: ControlMachine;
  readonly #transport: WebSocketTransport;
  readonly #peers: Record<string, string>;

  private constructor(
    driver: RaftDriver<CommandResult>,
    store: SqliteLogStore,
    machine: ControlMachine,
    transport: WebSocketTransport,
    peers: Record<string, string>,
  ) {
    this.#driver = driver;
    this.#store = store;
    this.#machine = machine;
    this.#transport = transport;
    this.#peers = peers;
    machine.onApplied((changed) => {
      if (changed.has("member") || changed.has("member-removed") || changed.has("snapshot")) this.#updatePeers();
    });
  }

  /**
   * Whether `store` holds a log with anything in it (a term, entries or a snapshot): a server that belonged to a
   * cluster. A log left by a start that never heard from a leader (a join that failed) does not count.
   */
  static async exists(home: string, store: Store): Promise<boolean> {
    await importLegacyLog(home, store);
    return holdsLog(new SqliteLogStore(store.db));
  }

  /** Opens the log and applies what it holds past the state's applied index; a bootstrap member leads at once. */
  static async open(opts: ControlLogOptions): Promise<ControlLog> {
    await importLegacyLog(opts.home, opts.store);
    const store = new SqliteLogStore(opts.store.db);
    const machine = new ControlMachine(opts.store);
    const peers = opts.peers ?? {};
    const registry = Object.fromEntries(machine.members().filter(isServer).map((m) => [m.id, m.address]));
    const transport = new WebSocketTransport({
      id: opts.id,
      token: opts.token,
      peers: Object.keys(registry).length > 0 ? registry : peers,
      path: PEER_PATH,
      onRefused: refusedPeers(opts.id, opts.log ?? (() => {})),
    });
    const driver = new RaftDriver<CommandResult>({
      id: opts.id,
      // A stored config (a log or snapshot of a cluster) overrides this.
      voters: opts.mode === "bootstrap" ? [opts.id] : [],
      store,
      transport,
      machine,
      transaction: (fn) => opts.store.transaction(fn),
      onFatal: opts.onFatal,
      // Elections after 0.5-1 s without a leader: a server busy compiling a module (a loaded machine) must not be
      // taken for dead, and a real failure is still over well within 3 s. Heartbeats every 50 ms.
      tickMs: 25,
      electionTicks: 20,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      timeoutMs: opts.timeoutMs ?? 10_000,
    });
    return new ControlLog(driver, store, machine, transport, peers);
  }

  get id(): string {
    return this.#driver.node.id;
  }

  get isLeader(): boolean {
    return this.#driver.node.role === "leader";
  }

  /** The index of the last entry this member applied. */
  get applied(): number {
    return this.#driver.applied;
  }

  /** The leader's id, when known. */
  get leader(): string | undefined {
    return this.#driver.leader;
  }

  /** The servers registered in the log. */
  members(): MemberRecord[] {
    return this.#machine.members();
  }

  /** Milliseconds since this server last heard from member `id` (0: itself); undefined if never since it started. */
  sinceHeard(id: string): number | undefined {
    return id === this.id ? 0 : this.#transport.sinceHeard(id);
  }

  /** Where member `id` is reached (its API's `host:port`), when known. */
  addressOf(id: string): string | undefined {
    return this.#machine.members().find((m) => m.id === id)?.address ?? this.#peers[id];
  }

  /** Serves a peer's connection (the transport's end, at PEER_PATH). */
  handlePeer(request: Request): Response {
    return this.#transport.handle(request);
  }

  /**
   * Commits `command` and resolves with what the state machine made of it; rejects with an OrcaError. `serial`: the
   * caller sends one command at a time (deploys): it is written at once rather than batched with others.
   */
  async propose(command: ControlCommand, opts: { serial?: boolean } = {}): Promise<unknown> {
    let result: CommandResult;
    try {
      result = await this.#driver.propose(encodeCommand(command), undefined, opts);
    } catch (err) {
      throw unavailable(err);
    }
    if (!result.ok) throw new OrcaError(result.error.code, result.error.message);
    return result.value;
  }

  /**
   * Calls `gather` just before each write of the log: commands it proposes then go in that write. `wake()` asks for
   * one soon (`now`: in this turn's microtasks). (Publishes gathered this way become one command with no wait of
   * their own.)
   */
  beforeWrite(gather: () => void): void {
    this.#driver.beforeTurn(gather);
  }

  wake(now?: boolean): void {
    this.#driver.wake(now);
  }

  /** Calls `listener` after changes were applied (the kinds of command, or `snapshot`), in apply order. */
  onApplied(listener: (changed: ReadonlySet<Change>) => void): void {
    this.#machine.onApplied(listener);
  }

  /** Resolves once this member has applied everything committed before the call (a linearizable read may follow). */
  async barrier(): Promise<void> {
    try {
      await this.#driver.readBarrier();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Resolves once this member has applied everything it knows to be committed, and, off a leader that has committed
   * an entry of its term, everything committed before the call (a barrier). For planning a write on the leader: a
   * leader deposed meanwhile cannot commit the write anyway, so no quorum round is needed there.
   */
  async caughtUp(): Promise<void> {
    const node = this.#driver.node;
    const settled = node.role === "leader" && node.termAt(node.commit) === node.term;
    if (settled && this.#driver.applied >= node.commit) return;
    await this.barrier();
  }

  /** Waits until a leader is known and a barrier passes (a member that starts or joins is caught up). */
  async ready(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (this.#driver.leader !== undefined) return await this.barrier();
      } catch (err) {
        if (Date.now() > end) throw err;
      }
      if (Date.now() > end) {
        throw new OrcaError("unavailable", "no leader answered in time", {
          hint: "is a majority of the cluster's servers up and reachable?",
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Changes the voters and learners (leader only): one change at a time, so one that cannot start yet (the last
   * one's second half is under way) is tried again for a few seconds.
   */
  async changeMembers(
    change: (config: { voters: string[]; learners: string[] }) => {
      voters: string[];
      learners: string[];
    },
  ): Promise<void> {
    const end = Date.now() + 5_000;
    for (;;) {
      const config = this.#driver.node.config;
      try {
        await this.#driver.changeConfig(change({ voters: [...config.voters], learners: [...config.learners] }));
        return;
      } catch (err) {
        if (!(err instanceof ConfigChangeError) || Date.now() > end) throw unavailable(err);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The config in force: voters and learners. */
  config(): { voters: string[]; learners: string[]; joint: boolean } {
    const c = this.#driver.node.config;
    return { voters: [...c.voters], learners: [...c.learners], joint: (c.outgoing?.length ?? 0) > 0 };
  }

  status(): MemberStatus {
    const node = this.#driver.node;
    const config = node.config;
    return {
      id: node.id,
      role: node.role,
      ...(node.leader !== undefined && { leader: node.leader }),
      term: node.term,
      commit: node.commit,
      applied: this.#driver.applied,
      snapshot: node.snapshotIndex,
      voters: [...config.voters],
      learners: [...config.learners],
    };
  }

  async close(): Promise<void> {
    this.#driver.stop();
    await this.#transport.close();
    this.#store.close();
  }

  /** Dials the members the registry names (once it names any; until then, the peers given at start). */
  #updatePeers(): void {
    const registry = Object.fromEntries(this.#machine.members().filter(isServer).map((m) => [m.id, m.address]));
    this.#transport.setPeers(Object.keys(registry).length > 0 ? registry : this.#peers);
  }
}

/** Whether a registry record is a server (a Raft member, dialed as a peer), not a worker node (`orca join`). */
function isServer(m: MemberRecord): boolean {
  return !m.facts?.worker;
}

/** Whether `log` holds anything: a term, entries, or a snapshot. */
function holdsLog(log: SqliteLogStore): boolean {
  return log.hardState().term > 0 || log.lastIndex() >= log.firstIndex() || log.snapshot() !== undefined;
}

/**
 * Moves a log kept in `raft.db` (by builds before the log joined the state's database) into `store`, once: the
 * file is then renamed `raft.db.imported`. A store that already holds a log keeps it, and the file is left alone.
 */
async function importLegacyLog(home: string, store: Store): Promise<void> {
  const path = `${home}/raft.db`;
  try {
    await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const legacy = new SqliteLogStore(path);
  const log = new SqliteLogStore(store.db);
  try {
    if (holdsLog(log)) {
      throw new OrcaError("internal", "two Raft logs: raft.db, and the one in orca.db", {
        where: home,
        hint: "raft.db is left from an older version; move it away if orca.db is the newer",
      });
    }
    const first = legacy.firstIndex();
    const last = legacy.lastIndex();
    store.transaction(() =>
      log.persistNow({
        snapshot: legacy.snapshot(),
        entries: last >= first ? legacy.entries(first, last + 1) : [],
        hardState: legacy.hardState(),
      })
    );
  } finally {
    legacy.close();
  }
  await Deno.rename(path, `${path}.imported`);
}

/**
 * Says (at most once a minute per peer) why a peer's connection was refused. A server that calls itself a member but
 * is unknown here is most often this server's own data dir wiped and started afresh: it belongs to another cluster now.
 */
function refusedPeers(
  self: string,
  log: (line: string) => void,
): (from: string, why: "token" | "unknown peer") => void {
  const said = new Map<string, number>();
  return (from, why) => {
    const key = `${from} ${why}`;
    if (Date.now() - (said.get(key) ?? -Infinity) < 60_000) return;
    said.set(key, Date.now());
    if (why === "token") {
      log(`refused a Raft peer calling itself ${JSON.stringify(from.slice(0, 64))}: wrong cluster token`);
    } else {
      log(
        `refused Raft traffic from server ${
          JSON.stringify(from.slice(0, 64))
        }, which is not a member of this server's ` +
          `cluster. If this server (${self}) was restarted with a wiped data dir, it no longer belongs to that ` +
          `cluster: remove it there (orca cluster remove ${self}) and start it with --join to join again`,
      );
    }
  };
}

/** A proposal or read the log could not finish: 503, with when to try again. */
export function unavailable(err: unknown): OrcaError {
  if (err instanceof NotLeaderError) {
    return new OrcaError("unavailable", `no leader to commit to (${err.message})`, {
      retryAfter: 1,
      hint: "the cluster is electing a leader; try again in a moment",
    });
  }
  if (err instanceof TimeoutError) {
    // No Retry-After: a client that sent it again could apply it twice.
    return new OrcaError("unavailable", `not committed in time; it may still be (${err.message})`, {
      hint: "check with `orca status` before sending it again",
    });
  }
  if (err instanceof ConfigChangeError) {
    return new OrcaError("unavailable", `membership change not started: ${err.message}`, { retryAfter: 1 });
  }
  return err instanceof OrcaError ? err : new OrcaError("internal", (err as Error).message ?? String(err));
}
