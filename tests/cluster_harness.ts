/**
 * Multi-server tests: real `orca server` processes on 127.0.0.1, .2, .3
 * (each its own ORCA_HOME, the same ports), each started in a process group
 * of its own (guest hosts included) so a kill reaches all of it and nothing
 * outlives its test.
 */

import { cliPath, launchServer } from "./harness.ts";

export const API_PORT = 17880;
export const HTTP_PORT = 17881;

export interface Member {
  ip: string;
  home: string;
  apiUrl: string;
  httpUrl: string;
  output(): string;
  /** Sends `signal` to the whole process group and waits for the server to end. */
  kill(signal?: Deno.Signal): Promise<void>;
  alive(): boolean;
  /** Stops (SIGSTOP) or resumes (SIGCONT) the whole process group: a server that hangs, then wakes. */
  pause(): void;
  resume(): void;
}

/** Starts `orca server` on `ip`; resolves once it says it is ready. */
export async function startMember(
  ip: string,
  home: string,
  extra: string[] = [],
  ports = { api: API_PORT, http: HTTP_PORT },
): Promise<Member> {
  const args = ["server", "--listen", ip, "--api-port", String(ports.api), "--http-port", String(ports.http)];
  const server = await launchServer([...args, "--home", home, "--workers", "1", "--pool-size", "1", ...extra], {
    group: true,
    timeoutMs: 60_000,
  }).catch((err) => {
    throw new Error(`on ${ip}: ${err.message}`);
  });
  return {
    ip,
    home,
    apiUrl: `http://${ip}:${ports.api}`,
    httpUrl: `http://${ip}:${ports.http}`,
    output: server.output,
    kill: (signal: Deno.Signal = "SIGKILL") => server.end(signal),
    alive: server.alive,
    pause: () => server.signal("SIGSTOP"),
    resume: () => server.signal("SIGCONT"),
  };
}

/** Polls `f` until it returns a value (not undefined/false) or `ms` pass. */
export async function eventually<T>(what: string, f: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An API call with the cluster token; the body parsed as JSON when it is JSON. */
export async function call(
  base: string,
  token: string,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${base}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...init.headers },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

/** Runs an `orca` client command against `server` with the cluster token; its exit code and output. */
export async function orcaAt(server: string, token: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cliPath, args[0], "--server", server, "--token", token, ...args.slice(1)],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
