/**
 * A small client for the Docker Engine API over its unix socket, on
 * docker-modem. Engine failures become OrcaErrors that say what to do.
 */

import Modem from "docker-modem";
import type { IncomingMessage } from "node:http";
import { OrcaError } from "../../errors.ts";

export interface EngineError extends Error {
  statusCode?: number;
  json?: { message?: string };
  code?: string;
}

export interface RequestOptions {
  query?: Record<string, unknown>;
  body?: unknown;
  /** Statuses that count as success (default 200, 201, 204, 304). */
  ok?: number[];
}

export class Engine {
  readonly socketPath: string;
  readonly #modem: Modem;

  constructor(socketPath = "/var/run/docker.sock") {
    this.socketPath = socketPath;
    this.#modem = new Modem({ socketPath });
  }

  /** Whether an engine answers on the socket. */
  async ping(): Promise<boolean> {
    try {
      await this.request("GET", "/_ping");
      return true;
    } catch {
      return false;
    }
  }

  request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return this.#dial(method, path, opts, false) as Promise<T>;
  }

  /** A streaming response (logs, stats, exec output, pull progress). */
  stream(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    return this.#dial(method, path, opts, true) as Promise<IncomingMessage>;
  }

  #dial(method: string, path: string, opts: RequestOptions, isStream: boolean): Promise<unknown> {
    const statusCodes: Record<number, boolean | string> = {};
    for (const code of opts.ok ?? [200, 201, 204, 304]) statusCodes[code] = true;
    for (const code of [400, 403, 404, 409, 500, 503]) if (!(code in statusCodes)) statusCodes[code] = "error";
    return new Promise((resolve, reject) => {
      this.#modem.dial({
        path: `${path}?`,
        method,
        // docker-modem sends the whole options object as a POST body unless _body is given; `{}` means none.
        options: { _query: opts.query ?? {}, _body: opts.body ?? {} },
        isStream,
        statusCodes,
      }, (err, data) => err ? reject(this.#explain(err as EngineError, method, path)) : resolve(data));
    });
  }

  #explain(err: EngineError, method: string, path: string): Error {
    if (err.code === "ENOENT" || err.code === "ECONNREFUSED" || err.code === "EACCES") {
      return new OrcaError("unavailable", `no Docker engine answers at ${this.socketPath}`, {
        hint: err.code === "EACCES"
          ? "this user may not use the Docker socket; add it to the docker group or run as root"
          : "start one: sudo bash scripts/docker_engine.sh (or systemctl start docker)",
        cause: err,
      });
    }
    const message = err.json?.message ?? err.message.replace(/^\(HTTP code \d+\) \S+ - /, "").trim();
    const wrapped = new Error(`docker ${method} ${path}: ${message}`) as EngineError;
    wrapped.statusCode = err.statusCode;
    wrapped.json = { message };
    return wrapped;
  }
}

/** The engine's own message of a failed request. */
export function engineMessage(err: unknown): string {
  return (err as EngineError)?.json?.message ?? (err instanceof Error ? err.message : String(err));
}

export function engineStatus(err: unknown): number | undefined {
  return (err as EngineError)?.statusCode;
}

/**
 * Splits the engine's multiplexed stream (8-byte frame headers: stream id,
 * then big-endian length) into stdout and stderr chunks.
 */
export async function* demux(
  stream: AsyncIterable<Uint8Array>,
): AsyncGenerator<{ stream: "stdout" | "stderr"; data: Uint8Array }> {
  let buffer = new Uint8Array(0);
  for await (const chunk of stream) {
    const merged = new Uint8Array(buffer.length + chunk.length);
    merged.set(buffer);
    merged.set(chunk, buffer.length);
    buffer = merged;
    while (buffer.length >= 8) {
      const size = new DataView(buffer.buffer, buffer.byteOffset + 4, 4).getUint32(0);
      if (buffer.length < 8 + size) break;
      yield { stream: buffer[0] === 2 ? "stderr" : "stdout", data: buffer.slice(8, 8 + size) };
      buffer = buffer.slice(8 + size);
    }
  }
}
