/** The API client the CLI uses: base URL, bearer token, errors as OrcaError. */

import { OrcaError } from "../errors.ts";
import { orcaHome, type Values } from "./command.ts";

export class Client {
  readonly base: string;
  readonly #token: string;

  constructor(base: string, token: string) {
    this.base = base.replace(/\/+$/, "");
    this.#token = token;
  }

  /** Builds a client from `--server` / `--token` and their environment defaults. */
  static async fromFlags(values: Values): Promise<Client> {
    const base = (values.server as string | undefined) ?? Deno.env.get("ORCA_SERVER") ?? "http://127.0.0.1:6880";
    if (!/^https?:\/\/[^/]+/.test(base)) {
      throw new OrcaError("usage", `--server must be an http(s) URL, got ${JSON.stringify(base)}`);
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
    return new Client(base, token);
  }

  /** Sends a request; returns the response when it is 2xx or `allow` lists its status. */
  async fetch(path: string, init: RequestInit = {}, allow: number[] = []): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.#token}`);
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, { ...init, headers });
    } catch (err) {
      throw new OrcaError("unavailable", `cannot reach the orca server at ${this.base}`, {
        hint: "is `orca server` running there? pass --server URL to use another",
        cause: err,
      });
    }
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
