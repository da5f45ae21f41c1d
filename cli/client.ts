/** The API client the CLI uses: base URL, bearer token, errors as OrcaError. */

import { OrcaError } from "../errors.ts";
import { orcaHome, type Values } from "./command.ts";

export class Client {
  /** The server in use: the first of `bases` that answered. */
  base: string;
  /** Servers of one cluster, tried in order when one cannot be reached. */
  readonly bases: string[];
  readonly #token: string;
  /** How long a 503 with Retry-After is sent again (0: answered at once; `orca gitops` retries on its own). */
  patienceMs = 15_000;

  constructor(base: string | string[], token: string) {
    this.bases = (Array.isArray(base) ? base : [base]).map((b) => b.replace(/\/+$/, ""));
    this.base = this.bases[0];
    this.#token = token;
  }

  /** Builds a client from `--server` / `--token` and their environment defaults. */
  static async fromFlags(values: Values): Promise<Client> {
    const list = (values.server as string | undefined) ?? Deno.env.get("ORCA_SERVER") ?? "http://127.0.0.1:6880";
    const bases = list.split(",").map((b) => b.trim()).filter(Boolean);
    for (const base of bases.length > 0 ? bases : [list]) {
      if (!/^https?:\/\/[^/]+/.test(base)) {
        throw new OrcaError(
          "usage",
          `--server must be an http(s) URL or a comma-separated list of them, got ${JSON.stringify(base)}`,
        );
      }
    }
    let token = (values.token as string | undefined) ?? Deno.env.get("ORCA_TOKEN");
    if (!token) {
      const path = `${orcaHome()}/cluster.token`;
      try {
        token = (await Deno.readTextFile(path)).trim();
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        throw new OrcaError("usage", `no API token: ${path} does not exist`, {
          hint:
            "pass --token (the server wrote it to $ORCA_HOME/cluster.token), or set ORCA_HOME to the server's data dir",
        });
      }
    }
    return new Client(bases, token);
  }

  /**
   * Sends a request; returns the response when it is 2xx or `allow` lists its status. A 503 with Retry-After (the
   * cluster is electing a leader, a service is full) is sent again after the wait it names, for up to 15 s.
   */
  async fetch(path: string, init: RequestInit = {}, allow: number[] = []): Promise<Response> {
    const end = Date.now() + this.patienceMs;
    for (;;) {
      const res = await this.#send(path, init);
      const wait = Number(res.headers.get("retry-after") ?? NaN);
      const resendable = !(init.body instanceof ReadableStream);
      if (res.status !== 503 || !Number.isFinite(wait) || !resendable || Date.now() + wait * 1000 > end) {
        return await this.#check(res, allow);
      }
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, Math.max(100, wait * 1000)));
    }
  }

  async #send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.#token}`);
    let res: Response | undefined;
    let failure: unknown;
    // The server in use first, then the others of the list: any server of a cluster answers.
    for (const base of [this.base, ...this.bases.filter((b) => b !== this.base)]) {
      try {
        res = await fetch(`${base}/api/v1${path}`, { ...init, headers });
        this.base = base;
        break;
      } catch (err) {
        failure = err;
        if (init.body instanceof ReadableStream) break; // a stream cannot be sent twice
      }
    }
    if (!res) throw unreachable(this.bases, failure);
    return res;
  }

  async #check(res: Response, allow: number[]): Promise<Response> {
    if (res.ok || allow.includes(res.status)) return res;
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw OrcaError.fromJSON(body) ??
      new OrcaError("internal", `the server answered ${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetch(path, {
      ...init,
      headers: { ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers },
    });
    return await res.json() as T;
  }
}

function unreachable(bases: string[], cause?: unknown): OrcaError {
  const where = bases.length === 1 ? `the orca server at ${bases[0]}` : `any of the orca servers ${bases.join(", ")}`;
  return new OrcaError("unavailable", `cannot reach ${where}`, {
    hint: "is `orca server` running there? pass --server URL (or a comma-separated list) to use another",
    cause,
  });
}
