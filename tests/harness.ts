/** Test harness: a real `orca server` process, the real CLI, temp data dirs. */

const root = new URL("../", import.meta.url).pathname;
export const cliPath = `${root}cli.ts`;
export const examplesDir = `${root}examples`;
export const guestsDir = `${root}tests/fixtures/guests`;

export interface ServerProcess {
  pid: number;
  home: string;
  apiUrl: string;
  httpUrl: string;
  token: string;
  output(): string;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Waits (at most 30 s) for the server to exit by itself; its status. */
  exited(): Promise<Deno.CommandStatus>;
}

/** A running `orca server` process (see `launchServer`). */
export interface Launched {
  pid: number;
  output(): string;
  /** Sends `signal` (to the whole process group if it has one) and waits for the server to end. */
  end(signal: Deno.Signal): Promise<void>;
  /** Sends `signal` and returns at once (SIGSTOP, SIGCONT). */
  signal(signal: Deno.Signal): void;
  alive(): boolean;
  /** Waits (at most 30 s) for the server to exit by itself; its status. */
  exited(): Promise<Deno.CommandStatus>;
}

/**
 * Runs `orca <args>` from `cli` (this checkout's by default) and resolves once the server says it is ready.
 * `group`: in a process group of its own (setsid), so a signal reaches its guest hosts too.
 */
export async function launchServer(
  args: string[],
  opts: { cli?: string; env?: Record<string, string>; group?: boolean; timeoutMs?: number } = {},
): Promise<Launched> {
  const argv = [Deno.execPath(), "run", "-A", opts.cli ?? cliPath, ...args];
  const child = new Deno.Command(opts.group ? "setsid" : argv[0], {
    args: opts.group ? argv : argv.slice(1),
    env: { ...opts.env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  let exited = false;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
  child.status.then(() => exited = true);
  const signal = (sig: Deno.Signal) => {
    try {
      // setsid made the server a group leader: a negative pid reaches the whole group.
      if (opts.group) Deno.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already exited
    }
  };
  const end = async (sig: Deno.Signal) => {
    signal(sig);
    await child.status;
    await done;
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!/proxy\s+(\S+)/.test(output)) {
    if (exited) throw new Error(`orca server exited:\n${output}`);
    if (Date.now() > deadline) {
      await end("SIGKILL");
      throw new Error(`orca server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  // The banner ends with the data dir: the lines between (https, metrics) come with it.
  for (let i = 0; i < 80 && !/\n\s+data\s+\S+\n/.test(output) && !exited; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    pid: child.pid,
    output: () => output,
    end,
    signal,
    alive: () => !exited,
    async exited() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the server did not exit:\n${output}`)), 30_000);
      });
      try {
        const status = await Promise.race([child.status, late]);
        await done;
        return status;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Starts `orca server` (from `cli`, this checkout's by default) on free loopback ports; resolves when it is ready. */
export async function startServer(
  home?: string,
  env: Record<string, string> = {},
  extraArgs: string[] = [],
  cli = cliPath,
): Promise<ServerProcess> {
  home ??= await Deno.makeTempDir({ prefix: "orca-test-home-" });
  const args = ["server", "--api-port", "0", "--http-port", "0", "--listen", "127.0.0.1", "--home", home];
  const server = await launchServer([...args, ...extraArgs], { cli, env });
  const output = server.output();
  const apiUrl = /api\s+(\S+)\/api\/v1/.exec(output)![1];
  const httpUrl = /proxy\s+(\S+)/.exec(output)![1];
  const token = (await Deno.readTextFile(`${home}/cluster.token`)).trim();
  return {
    pid: server.pid,
    home,
    apiUrl,
    httpUrl,
    token,
    output: server.output,
    stop: () => server.end("SIGTERM"),
    kill: () => server.end("SIGKILL"),
    exited: server.exited,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Calls `probe` every 100 ms until it returns something (at most `timeoutMs`), and returns that. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs the real `orca` CLI against `server`. */
export async function orca(server: ServerProcess | undefined, ...args: string[]): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    // --server goes right after the command name: everything after `--` belongs to `orca exec`.
    args: ["run", "-A", cliPath, ...args.slice(0, 1), ...(server ? ["--server", server.apiUrl] : []), ...args.slice(1)],
    env: { NO_COLOR: "1", ...(server ? { ORCA_HOME: server.home } : {}) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** Writes a deployable folder: services/<project>/service.toml for each entry. */
export async function writeProject(projects: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "orca-test-project-" });
  for (const [project, toml] of Object.entries(projects)) {
    await Deno.mkdir(`${dir}/services/${project}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/services/${project}/service.toml`, toml);
  }
  return dir;
}

/** GET through the proxy; returns status and text. */
export async function get(url: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text() };
}

/**
 * Requests `url` (or calls `ask`) back to back until the returned function is
 * called, which gives back how many answered 200 `expect` and what else came
 * back (should be nothing).
 */
export function healthyLoop(
  url: string | (() => Promise<{ status: number; text: string }>),
  expect: string,
): () => Promise<{ ok: number; failures: string[] }> {
  const ask = typeof url === "string" ? () => get(url) : url;
  let running = true;
  const seen = { ok: 0, failures: [] as string[] };
  const loop = (async () => {
    while (running) {
      try {
        const { status, text } = await ask();
        if (status === 200 && text === expect) seen.ok++;
        else seen.failures.push(`${status} ${text.slice(0, 200)}`);
      } catch (err) {
        seen.failures.push(String(err));
      }
    }
  })();
  return async () => {
    running = false;
    await loop;
    return seen;
  };
}

/** A GET with a chosen Host header, over a raw socket (fetch does not let us set Host). */
export async function getWithHost(
  baseUrl: string,
  path: string,
  host: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(baseUrl);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
  let raw = "";
  for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) raw += chunk;
  const [head, ...rest] = raw.split("\r\n\r\n");
  const status = Number(head.split(" ")[1]);
  const chunked = /transfer-encoding: chunked/i.test(head);
  const body = rest.join("\r\n\r\n");
  return { status, text: chunked ? dechunk(body) : body };
}

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** Removes every container the server of `home` created (tests end with this; a retired one may still be draining). */
export async function removeContainers(home: string): Promise<void> {
  const { Engine } = await import("../runtime/mod.ts");
  const engine = new Engine();
  if (!(await engine.ping())) return;
  const node = (await Deno.readTextFile(`${home}/node.id`)).trim();
  const list = await engine.request<{ Id: string }[]>("GET", "/containers/json", {
    query: { all: true, filters: JSON.stringify({ label: [`orca.node=${node}`] }) },
  });
  for (const c of list) {
    await engine.request("DELETE", `/containers/${c.Id}`, { query: { force: true } }).catch(() => {});
  }
  const networks = await engine.request<{ Id: string }[]>("GET", "/networks", {
    query: { filters: JSON.stringify({ label: [`orca.node=${node}`] }) },
  });
  for (const n of networks) await engine.request("DELETE", `/networks/${n.Id}`).catch(() => {});
}
