/**
 * Worker nodes (`orca join`) keep one WebSocket to the control plane, at
 * `/api/v1/agent` with the cluster token. A worker says who it is (its id,
 * its API address, its facts: capacity, labels, GPUs, runtimes, proxy); a
 * server that does not lead answers with the leader's address and closes,
 * so the worker follows the leader. The leader registers the worker through
 * the log, hears its heartbeats (a silent worker is unhealthy after the node
 * timeout: its replicas move), commits its replica reports, and sends it the
 * state it runs from (services, placements, replica states, the registry)
 * at once and after each change. Workers take no part in Raft.
 *
 * Messages are JSON text: from the worker `hello`, `ping` (every second),
 * `states`; to it `view`, `redirect`, `error`.
 */

import { OrcaError } from "../errors.ts";
import { parseHost } from "../proxy/mod.ts";
import { checkFacts } from "./node_facts.ts";
import type { ControlLog } from "./raft_log.ts";
import { checkReport } from "./replica_report.ts";

/** Where workers connect, on the API port. */
export const AGENT_PATH = "/api/v1/agent";

/** The largest message a worker may send (a report of 10,000 services fits). */
const MAX_MESSAGE_BYTES = 4 << 20;
/** Views are sent at most this often while changes keep coming. */
const VIEW_EVERY_MS = 100;

export interface AgentHubOptions {
  log: ControlLog;
  /** The state a worker runs from, as a snapshot's bytes (without queues, runs and history). */
  view(): string;
  /** The cluster's secrets key (base64): a worker needs it to open the secrets its services reference. */
  secretsKey(): string;
  /** Commits a worker's report of its workloads. */
  replicas(id: string, report: ReturnType<typeof checkReport>): Promise<void>;
  onLog?(line: string): void;
}

interface Connected {
  socket: WebSocket;
  heard: number;
  /** The index of the last state it said it installed. */
  applied: number;
  /** What it says of itself (version, runtimes, hosts), for `orca nodes`. */
  node: Record<string, unknown>;
}

export class AgentHub {
  readonly #opts: AgentHubOptions;
  readonly #agents = new Map<string, Connected>();
  readonly #heard = new Map<string, number>();
  #timer?: ReturnType<typeof setTimeout>;

  constructor(opts: AgentHubOptions) {
    this.#opts = opts;
  }

  /** Milliseconds since worker `id` was last heard from (by this server); undefined if never. */
  sinceHeard(id: string): number | undefined {
    const at = this.#heard.get(id);
    return at === undefined ? undefined : performance.now() - at;
  }

  /** What connected worker `id` says of itself; undefined when it is not connected here. */
  nodeReport(id: string): Record<string, unknown> | undefined {
    return this.#agents.get(id)?.node;
  }

  /** Takes a worker's connection (the caller checked the token). */
  handle(request: Request): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new OrcaError("invalid", "a worker's connection is a WebSocket").toResponse();
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    let id: string | undefined;
    let greeting = false;
    socket.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : "";
      if (text.length === 0 || text.length > MAX_MESSAGE_BYTES) {
        return this.#refuse(socket, "message too large or not text");
      }
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text);
      } catch {
        return this.#refuse(socket, "a message is not JSON");
      }
      if (id === undefined) {
        if (greeting) return; // its hello is being registered
        greeting = true;
        this.#hello(socket, message).then((named) => id = named, (err) => this.#refuse(socket, err.message));
        return;
      }
      this.#heard.set(id, performance.now());
      const agent = this.#agents.get(id);
      if (agent) agent.heard = performance.now();
      if (message.type === "applied" && agent && Number.isSafeInteger(message.index)) {
        agent.applied = Math.max(agent.applied, message.index as number);
      }
      if (message.type === "states") {
        let report;
        try {
          report = checkReport(message);
        } catch (err) {
          return this.#refuse(socket, (err as Error).message);
        }
        this.#opts.replicas(id, report).catch((err) => this.#opts.onLog?.(`worker ${id}: report not stored: ${err}`));
      }
    };
    socket.onclose = () => {
      if (id !== undefined && this.#agents.get(id)?.socket === socket) this.#agents.delete(id);
    };
    socket.onerror = () => {};
    return response;
  }

  /** The state changed: every worker gets the new view (soon; changes close together go in one). */
  changed(): void {
    if (this.#timer !== undefined || this.#agents.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#opts.log.isLeader) return this.redirectAll();
      const view = `{"type":"view","view":${this.#opts.view()}}`;
      for (const agent of this.#agents.values()) send(agent.socket, view);
    }, VIEW_EVERY_MS);
  }

  /**
   * Resolves once every connected worker installed the state through `index` (it was sent at once), or after
   * `timeoutMs` (one that does not say so in time is not waited for).
   */
  async spread(index: number, timeoutMs: number): Promise<void> {
    this.changed();
    const deadline = performance.now() + timeoutMs;
    while ([...this.#agents.values()].some((a) => a.applied < index) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** This server no longer leads: its workers are sent to the leader. */
  redirectAll(): void {
    for (const [id, agent] of this.#agents) {
      this.#redirect(agent.socket);
      this.#agents.delete(id);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const agent of this.#agents.values()) agent.socket.close(1001, "server stopping");
    this.#agents.clear();
  }

  /** Registers the worker that says hello (leader only); resolves with its id. */
  async #hello(socket: WebSocket, message: Record<string, unknown>): Promise<string> {
    if (message.type !== "hello") throw new Error("the first message must be hello");
    const log = this.#opts.log;
    if (!log.isLeader) {
      this.#redirect(socket);
      throw new Error("not the leader");
    }
    const { id, address } = message;
    if (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
      throw new Error("a node id is 1-64 letters, digits, . _ -");
    }
    const host = typeof address === "string" ? parseHost(address) : undefined;
    if (!host?.port) throw new Error("a worker's address is host:port, where its API listens");
    const config = log.config();
    if (config.voters.includes(id) || config.learners.includes(id)) {
      throw new Error(`${id} is a server of this cluster, not a worker`);
    }
    const facts = { ...checkFacts(message.facts), worker: true };
    const node = typeof message.node === "object" && message.node !== null
      ? message.node as Record<string, unknown>
      : {};
    await log.propose({ type: "member", id, address: address as string, facts, at: Date.now() });
    this.#agents.get(id)?.socket.close(1000, "replaced by a new connection");
    this.#agents.set(id, { socket, heard: performance.now(), node, applied: 0 });
    this.#heard.set(id, performance.now());
    // The cluster's secrets key first (the view holds secrets sealed with it), over this authenticated socket only.
    send(socket, JSON.stringify({ type: "secrets-key", key: this.#opts.secretsKey() }));
    send(socket, `{"type":"view","view":${this.#opts.view()}}`);
    this.#opts.onLog?.(`worker ${id} connected from ${address}`);
    return id;
  }

  #redirect(socket: WebSocket): void {
    const leader = this.#opts.log.leader;
    const address = leader === undefined ? undefined : this.#opts.log.addressOf(leader);
    send(socket, JSON.stringify({ type: "redirect", ...(address && { leader: address }) }));
    socket.close(1000, "not the leader");
  }

  #refuse(socket: WebSocket, why: string): void {
    send(socket, JSON.stringify({ type: "error", message: why }));
    socket.close(1008, why.slice(0, 100));
  }
}

function send(socket: WebSocket, text: string): void {
  if (socket.readyState === WebSocket.OPEN) socket.send(text);
}
