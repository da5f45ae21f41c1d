/**
 * One guest host process (host.ts) as the server sees it: started with few
 * permissions and none of the server's environment, sent calls as frames
 * (wire.ts), and killed when a call outlives its deadline and grace. Its calls
 * in flight then settle as lost; streamed response bodies arrive chunk by chunk.
 *
 * Frames travel over a Unix socket the server listens on in a folder only its
 * user can enter, for the one connection the host makes when it starts: read
 * and written without streams, a round trip costs a third of what the host's
 * stdin and stdout cost.
 */

import { OrcaError } from "../../errors.ts";
import type { LogSink } from "./backend.ts";
import type { HostCall, HostMessage } from "./host.ts";
import { FrameSender, readFrames, sendPieces } from "./wire.ts";
import { Alarms } from "./alarms.ts";
import { IncomingBody, Wanted } from "./host_bodies.ts";

/** What a host process needs to know from its pool. */
export interface HostProcessOptions {
  /** The compile cache (the only folder hosts may read). */
  cacheDir: string;
  /** Workloads idle this long drop their instances. */
  idleMs: number;
  /** Guest log lines. */
  log: LogSink;
  /** Where each host's socket folder is made (default: the system's temporary folder). */
  socketParent?: string;
}

interface Pending {
  workload: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Settles the call when its host is lost; `late` for the call whose deadline passed. */
  lost(late: boolean, why: string): void;
  /** Set once the host handed the call to its guest. */
  began: boolean;
  /** Stops the call's kill clock. */
  silence?: () => void;
}

/**
 * A call's host was killed or died before answering. `began`: whether its
 * guest had been handed the call (one that had not may be run again);
 * `late`: this call's deadline and grace passed (it got its host killed).
 */
export class HostLost extends Error {
  constructor(readonly why: string, readonly late: boolean, readonly began: boolean) {
    super(why);
    this.name = "HostLost";
  }
}

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One guest host process and the calls waiting on it. */
export class HostProcess {
  readonly startedAt = performance.now();
  readonly loaded = new Map<string, Promise<void>>();
  inFlight = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #streams = new Map<number, IncomingBody>();
  /** Streamed request bodies being sent, by call. */
  readonly #bodies = new Map<number, Wanted>();
  /** The calls' kill clocks: one timer, not one per call. */
  readonly #alarms = new Alarms();
  readonly #opts: HostProcessOptions;
  readonly #ready: Promise<void>;
  readonly #onLost: (why: string, workloads: string[]) => void;
  #process?: Deno.ChildProcess;
  #conn?: Deno.Conn;
  #sender?: FrameSender;
  #next = 1;
  #dead = false;

  constructor(
    readonly name: string,
    opts: HostProcessOptions,
    pauseMs: number,
    onLost: (why: string, workloads: string[]) => void,
  ) {
    this.#opts = opts;
    this.#onLost = onLost;
    this.#ready = (pauseMs > 0 ? new Promise((r) => setTimeout(r, pauseMs)) : Promise.resolve()).then(async () => {
      if (this.#dead) return;
      try {
        await this.#start();
      } catch (err) {
        this.#lose(undefined, `could not be started (${(err as Error).message})`);
      }
    });
  }

  async #start(): Promise<void> {
    // A folder of its own (mode 0700): no other user can reach the socket.
    const dir = await Deno.makeTempDir({
      prefix: "orca-host-",
      ...(this.#opts.socketParent && { dir: this.#opts.socketParent }),
    });
    try {
      await Deno.chmod(dir, 0o700);
      const path = `${dir}/socket`;
      const listener = Deno.listen({ transport: "unix", path });
      try {
        const { command, args } = hostCommand(this.#opts.cacheDir, this.#opts.idleMs, path);
        const home = Deno.env.get("HOME");
        const denoDir = Deno.env.get("DENO_DIR");
        this.#process = new Deno.Command(command, {
          args,
          stdin: "null",
          stdout: "inherit",
          stderr: "inherit",
          cwd: this.#opts.cacheDir,
          // Guests get no host env anyway; the host process does not hold the server's secrets either.
          clearEnv: true,
          env: { NO_COLOR: "1", ...(home && { HOME: home }), ...(denoDir && { DENO_DIR: denoDir }) },
        }).spawn();
        const exited = this.#process.status.then((status) => {
          const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
          this.#lose(undefined, how);
          throw new Error(`it ${how} before it connected`);
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("it did not connect within 30 s")), 30_000);
        });
        const conn = await Promise.race([listener.accept(), exited, timeout]).finally(() => clearTimeout(timer));
        if (this.#dead) {
          conn.close();
          return;
        }
        this.#conn = conn;
        this.#sender = new FrameSender(conn);
        this.#read(conn);
      } finally {
        listener.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  async #read(conn: Deno.Conn): Promise<void> {
    try {
      for await (const frame of readFrames(conn)) {
        const message = frame as HostMessage;
        if ("log" in message) {
          this.#opts.log(...message.log);
          continue;
        }
        if ("chunk" in message) {
          this.#streams.get(message.chunk[0])?.push(message.chunk[1]);
          continue;
        }
        if ("began" in message) {
          const pending = this.#pending.get(message.began);
          if (pending) pending.began = true;
          continue;
        }
        if ("pull" in message) {
          this.#bodies.get(message.pull)?.add();
          continue;
        }
        if ("drop" in message) {
          this.#bodies.get(message.drop)?.stop();
          continue;
        }
        if ("end" in message) {
          const [id, failure] = message.end;
          const pending = this.#pending.get(id);
          this.#pending.delete(id);
          if (pending) pending.silence?.();
          this.#streams.get(id)?.end(failure ?? undefined);
          this.#streams.delete(id);
          this.#bodies.get(id)?.stop();
          continue;
        }
        const pending = this.#pending.get(message.id);
        if (!pending) continue;
        if (message.ok && message.streamed) {
          // The call goes on (its deadline too) until the body's end arrives.
          const id = message.id;
          const body = new IncomingBody(() => this.#pending.has(id) && this.send({ id, op: "cancel" }));
          this.#streams.set(id, body);
          pending.lost = (_late, why) => body.end(why);
          pending.resolve({ ...(message.value as object), body: body.readable, finished: body.finished });
          continue;
        }
        this.#bodies.get(message.id)?.stop();
        this.#pending.delete(message.id);
        pending.silence?.();
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new OrcaError(message.error.code, message.error.message, { hint: message.error.hint }));
      }
    } catch (err) {
      if (!this.#dead) this.#lose(undefined, `sent a bad frame (${(err as Error).message})`);
    }
  }

  /**
   * Sends a call; settles with its answer, or rejects with HostLost if the host is killed or dies first.
   * `killAfterMs`: the call's deadline and grace, past which the host is deemed stuck (none for loads and stats).
   */
  request(call: DistributiveOmit<HostCall, "id">, killAfterMs: number | undefined): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.#dead) {
        reject(new HostLost(`the ${this.name} is gone`, false, false));
        return;
      }
      const id = this.#next++;
      const silence = killAfterMs === undefined ? undefined : this.#alarms.arm(
        killAfterMs,
        () => this.#lose(id, `stopped answering (a call ran ${killAfterMs} ms) and was killed`),
      );
      const pending: Pending = {
        workload: "workload" in call ? call.workload : "desc" in call ? call.desc.id : "",
        resolve,
        reject,
        lost: (late, why) => reject(new HostLost(why, late, pending.began)),
        began: false,
        silence,
      };
      this.#pending.set(id, pending);
      if (call.op === "http" && call.req.body instanceof ReadableStream) {
        const body = call.req.body;
        this.send({ ...call, id, req: { ...call.req, body: null }, streamedBody: true });
        this.#sendBody(id, body);
      } else {
        this.send({ ...call, id } as HostCall);
      }
    });
  }

  /**
   * Sends a streamed request body after its call, a piece each time the host
   * pulls one (its guest reads), then its end. Nothing of the body is read
   * before the first pull: a call lost before its guest began can be sent
   * again with its body whole. Stops when the host drops the body or the call
   * is over; what the guest did not read is cancelled then.
   */
  async #sendBody(id: number, body: ReadableStream<Uint8Array>): Promise<void> {
    const wanted = new Wanted();
    this.#bodies.set(id, wanted);
    try {
      let credit = wanted.next();
      if (!await credit) return; // never read: left whole for a retry, or for its caller to drop
      const pieces = sendPieces(body, async (chunk) => {
        if (!await credit) throw new Error("the body is no longer wanted");
        credit = wanted.next();
        await this.send({ id, op: "body", chunk });
      }, wanted.signal);
      await pieces;
      await this.send({ id, op: "body", chunk: null });
    } catch {
      // Dropped by the guest, the call is over, the host is gone, or the client went away mid-body (the guest then
      // reads an early end).
      if (!wanted.signal.aborted) await this.send({ id, op: "body", chunk: null });
    } finally {
      this.#bodies.delete(id);
    }
  }

  /** Writes a call (after the host started); a write to a dead host is dropped. */
  send(call: HostCall): Promise<void> {
    return this.#ready.then(() => this.#sender?.send(call)).catch(() => {});
  }

  kill(): void {
    this.#lose(undefined, "was shut down");
  }

  #lose(lateId: number | undefined, why: string): void {
    if (this.#dead) return;
    this.#dead = true;
    try {
      this.#process?.kill("SIGKILL");
    } catch {
      // already gone
    }
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    // The incident is the services' whose calls began (or ran late); the others are sent again (hosts.ts).
    const workloads = new Set<string>();
    for (const [id, pending] of this.#pending) {
      if (pending.began || id === lateId) workloads.add(pending.workload);
      pending.lost(id === lateId, `the ${this.name} ${why}`);
    }
    this.#pending.clear();
    this.#alarms.close();
    this.#streams.clear();
    for (const body of this.#bodies.values()) body.stop();
    this.#onLost(why, [...workloads]);
  }
}

/**
 * How to start a host: this same program in host mode (a compiled `orca`), or Deno on host.ts with few permissions:
 * reading the compile cache, and reaching its server's socket.
 */
function hostCommand(cacheDir: string, idleMs: number, socket: string): { command: string; args: string[] } {
  const exec = Deno.execPath();
  const hostArgs = ["--idle-ms", String(idleMs), "--socket", socket];
  if (!/(^|[\\/])deno(\.exe)?$/.test(exec)) return { command: exec, args: ["__wasm-host", ...hostArgs] };
  return {
    command: exec,
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      // The compile cache, and the watchdog's worker (a Worker's module is read with the host's permissions).
      `--allow-read=${cacheDir},${new URL("./watchdog_worker.ts", import.meta.url).pathname},${socket}`,
      `--allow-write=${socket}`,
      "--allow-net",
      new URL("./host.ts", import.meta.url).pathname,
      ...hostArgs,
    ],
  };
}
