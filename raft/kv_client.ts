/**
 * A client of the Raft key-value server (raft/server.ts) for tests and
 * benchmarks: it finds the leader (following the `x-raft-leader` hint, or
 * trying the next node), and retries a write with the same session
 * (client, seq), so that however often it is sent it applies once, until it
 * hears back or its deadline passes (then the write's outcome is unknown).
 * A read may be sent to any node (followers serve linearizable reads too).
 */

export interface KvClientOptions {
  /** Each node's id and client API base URL (`http://127.0.0.2:7001`). */
  nodes: Record<string, string>;
  token: string;
  /** How long one attempt may take before the next node is tried. */
  attemptMs?: number;
}

/** An answer, or none before the deadline (`ok: false`). */
export type Answer<T> = { ok: true; value: T } | { ok: false };

export class KvClient {
  readonly #nodes: Record<string, string>;
  readonly #ids: string[];
  readonly #headers: Record<string, string>;
  readonly #attemptMs: number;
  #leader: string;

  constructor(opts: KvClientOptions) {
    this.#nodes = opts.nodes;
    this.#ids = Object.keys(opts.nodes);
    this.#headers = { authorization: `Bearer ${opts.token}` };
    this.#attemptMs = opts.attemptMs ?? 1000;
    this.#leader = this.#ids[Math.floor(Math.random() * this.#ids.length)];
  }

  /** Writes `key`; with a session, a retry of the same write applies once. The answer is the session outcome. */
  put(
    key: string,
    value: string,
    deadline: number,
    session?: { client: string; seq: number },
  ): Promise<Answer<string>> {
    const headers: Record<string, string> = session
      ? { "x-client-id": session.client, "x-client-seq": String(session.seq) }
      : {};
    return this.#call(`/kv/${encodeURIComponent(key)}`, { method: "PUT", body: value, headers }, deadline, (b) => {
      return (b as { status: string }).status;
    });
  }

  /**
   * A linearizable read of `key` (null: never written), first asked of node `at` when given (any node serves
   * reads), else of the leader as far as this client knows.
   */
  get(key: string, deadline: number, at?: string): Promise<Answer<string | null>> {
    return this.#call(`/kv/${encodeURIComponent(key)}`, { method: "GET" }, deadline, (b) => {
      return (b as { value: string | null }).value;
    }, at);
  }

  /** Node `id`'s status, or undefined if it does not answer. */
  async status(id: string, query = ""): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await fetch(`${this.#nodes[id]}/status${query}`, {
        headers: this.#headers,
        signal: AbortSignal.timeout(this.#attemptMs),
      });
      return res.ok ? await res.json() : (await res.body?.cancel(), undefined);
    } catch (err) {
      if (_unreachable(err)) return undefined;
      throw err;
    }
  }

  async #call<T>(
    path: string,
    init: RequestInit,
    deadline: number,
    read: (body: unknown) => T,
    first?: string,
  ): Promise<Answer<T>> {
    for (let at = first; performance.now() < deadline; at = undefined) {
      const id = at ?? this.#leader;
      const wait = Math.min(this.#attemptMs, deadline - performance.now());
      let res: Response;
      try {
        res = await fetch(`${this.#nodes[id]}${path}`, {
          ...init,
          headers: { ...this.#headers, ...init.headers as Record<string, string> },
          signal: AbortSignal.timeout(Math.max(1, wait)),
        });
      } catch (err) {
        if (!_unreachable(err)) throw err;
        this.#next(id);
        await _sleep(10);
        continue;
      }
      const body = await res.json().catch(() => undefined);
      if (res.ok) return { ok: true, value: read(body) };
      if (res.status === 503) {
        const hint = res.headers.get("x-raft-leader");
        if (hint && hint !== id && hint in this.#nodes) this.#leader = hint;
        else {
          this.#next(id);
          await _sleep(10);
        }
        continue;
      }
      // 504: the outcome is unknown; sent again, a write with a session applies at most once.
      if (res.status !== 504) throw new Error(`${init.method} ${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
    }
    return { ok: false };
  }

  /** `id` did not help: try the node after it (unless another caller already moved on). */
  #next(id: string): void {
    if (this.#leader === id) this.#leader = this.#ids[(this.#ids.indexOf(id) + 1) % this.#ids.length];
  }
}

/** A node down, cut off, or too slow: try another. */
export function _unreachable(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof DOMException &&
    (err.name === "TimeoutError" || err.name === "AbortError"));
}

export function _sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
