/**
 * Test and benchmark helper: a Raft cluster of real server processes
 * (raft/server.ts) on loopback, one address each (127.0.0.1, .2, .3, ...),
 * each with its own SQLite data dir. With `proxies`, every node dials every
 * other through a TCP proxy of its own (raft/tcp_proxy.ts), so a node can be
 * partitioned by cutting the proxies to and from it.
 */

import { KvClient } from "./kv_client.ts";
import { TcpProxy } from "./tcp_proxy.ts";

export interface ClusterOptions {
  size: number;
  /** Where the nodes' data dirs go. */
  dir: string;
  token: string;
  proxies?: boolean;
  tickMs?: number;
  snapshotEvery?: number;
  /** Each node's address on its own loopback host (127.0.0.<i>); else all on 127.0.0.1. */
  distinctHosts?: boolean;
}

interface Node {
  id: string;
  listen: string;
  peers: Record<string, string>;
  process?: Deno.ChildProcess;
}

export class ProcessCluster {
  readonly ids: string[];
  readonly client: KvClient;
  /** The proxy each (from, to) pair goes through: `${from}>${to}`. */
  readonly proxies = new Map<string, TcpProxy>();
  readonly #opts: ClusterOptions;
  readonly #nodes = new Map<string, Node>();

  private constructor(opts: ClusterOptions, nodes: Node[]) {
    this.#opts = opts;
    this.ids = nodes.map((n) => n.id);
    for (const n of nodes) this.#nodes.set(n.id, n);
    this.client = new KvClient({
      nodes: Object.fromEntries(nodes.map((n) => [n.id, `http://${n.listen}`])),
      token: opts.token,
    });
  }

  /** Starts every node and waits until each answers. */
  static async start(opts: ClusterOptions): Promise<ProcessCluster> {
    const ids = Array.from({ length: opts.size }, (_, i) => `n${i + 1}`);
    const listen = new Map(ids.map((id, i) => [id, _freeAddr(opts.distinctHosts ? `127.0.0.${i + 1}` : "127.0.0.1")]));
    const cluster = new ProcessCluster(opts, ids.map((id) => ({ id, listen: listen.get(id)!, peers: {} })));
    for (const from of ids) {
      for (const to of ids) {
        if (from === to) continue;
        const [hostname, port] = listen.get(to)!.split(":");
        let addr = listen.get(to)!;
        if (opts.proxies) {
          const proxy = new TcpProxy({ hostname, port: Number(port) });
          cluster.proxies.set(`${from}>${to}`, proxy);
          addr = proxy.addr;
        }
        cluster.#nodes.get(from)!.peers[to] = addr;
      }
    }
    await Promise.all(ids.map((id) => cluster.restart(id)));
    return cluster;
  }

  /** Starts node `id` (again, on its data dir) and waits until it answers. */
  async restart(id: string): Promise<void> {
    const n = this.#nodes.get(id)!;
    const o = this.#opts;
    const serverPath = new URL("./server.ts", import.meta.url).pathname;
    const peers = Object.entries(n.peers).map(([p, a]) => `${p}=${a}`).join(",");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        serverPath,
        ...["--id", id, "--listen", n.listen, "--peers", peers, "--data", `${o.dir}/${id}`],
        ...["--tick-ms", String(o.tickMs ?? 20), "--snapshot-every", String(o.snapshotEvery ?? 100_000)],
      ],
      env: { ORCA_RAFT_TOKEN: o.token },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    n.process = child;
    // A node that exits by itself (a storage failure) is no longer running.
    child.status.then(() => {
      if (n.process === child) n.process = undefined;
    });
    const end = performance.now() + 20_000;
    while (!(await this.client.status(id))) {
      if (performance.now() > end) throw new Error(`node ${id} did not start in 20 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** kill -9 of node `id`; resolves once it is gone. */
  async kill(id: string): Promise<void> {
    const n = this.#nodes.get(id)!;
    const p = n.process;
    if (!p) return;
    n.process = undefined;
    p.kill("SIGKILL");
    await p.status;
  }

  /** Resolves when node `id`'s process ends by itself, with how it ended. */
  exited(id: string): Promise<Deno.CommandStatus> {
    const p = this.#nodes.get(id)!.process;
    if (!p) throw new Error(`node ${id} is not running`);
    return p.status;
  }

  /** Cuts node `id` off from every other node (both directions); clients still reach it. */
  partition(id: string): void {
    for (const [pair, proxy] of this.proxies) if (pair.split(">").includes(id)) proxy.cut();
  }

  heal(): void {
    for (const proxy of this.proxies.values()) proxy.heal();
  }

  /** The node every live node that names a leader names, with its term, if they agree on one that leads. */
  async leader(among = this.ids): Promise<{ id: string; term: number } | undefined> {
    const statuses = await Promise.all(among.filter((id) => this.alive(id)).map((id) => this.client.status(id)));
    const leaders = statuses.filter((s) => s?.role === "leader") as { id: string; term: number }[];
    if (leaders.length === 0) return undefined;
    const newest = leaders.reduce((a, b) => b.term > a.term ? b : a);
    return { id: newest.id, term: newest.term };
  }

  /** Node `id`'s client API base URL. */
  nodeUrl(id: string): string {
    return `http://${this.#nodes.get(id)!.listen}`;
  }

  alive(id: string): boolean {
    return this.#nodes.get(id)!.process !== undefined;
  }

  /** Node `id`'s status (`?digest` adds a hash of its whole state), or undefined if it does not answer. */
  status(id: string, digest = false): Promise<Record<string, unknown> | undefined> {
    return this.client.status(id, digest ? "?digest" : "");
  }

  async stop(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}

/** A port free on `hostname` now (bound, then let go): the next to bind it gets it. */
export function _freeAddr(hostname: string): string {
  const l = Deno.listen({ hostname, port: 0 });
  const addr = `${hostname}:${l.addr.port}`;
  l.close();
  return addr;
}
