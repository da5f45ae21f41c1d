/**
 * One guest host process (host.ts) as the server sees it: started with few
 * permissions and none of the server's environment, sent calls as frames
 * (wire.ts), and killed when a call outlives its deadline and grace. Its calls
 * in flight then settle as lost; streamed response bodies arrive chunk by chunk.
 */

import { OrcaError } from "../../errors.ts";
import type { LogSink } from "./executor.ts";
import type { HostCall, HostMessage } from "./host.ts";
import { encodeFrame, readFrames, sendPieces } from "./wire.ts";

/** What a host process needs to know from its pool. */
export interface HostProcessOptions {
  /** The compile cache (the only folder hosts may read). */
  cacheDir: string;
  /** Workloads idle this long drop their instances. */
  idleMs: number;
  /** Guest log lines. */
  log: LogSink;
}

interface Pending {
  workload: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Settles the call when its host is lost; `late` for the call whose deadline passed. */
  lost(late: boolean, why: string): void;
  timer?: ReturnType<typeof setTimeout>;
}

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One guest host process and the calls waiting on it. */
export class HostProcess {
  readonly startedAt = performance.now();
  readonly loaded = new Map<string, Promise<void>>();
  inFlight = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #streams = new Map<number, IncomingBody>();
  readonly #opts: HostProcessOptions;
  readonly #ready: Promise<void>;
  readonly #onLost: (why: string, workloads: string[]) => void;
  #process?: Deno.ChildProcess;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;
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
    this.#ready = (pauseMs > 0 ? new Promise((r) => setTimeout(r, pauseMs)) : Promise.resolve()).then(() => {
      if (this.#dead) return;
      try {
        this.#start();
      } catch (err) {
        this.#lose(undefined, `could not be started (${(err as Error).message})`);
      }
    });
  }

  #start(): void {
    const { command, args } = hostCommand(this.#opts.cacheDir, this.#opts.idleMs);
    const home = Deno.env.get("HOME");
    const denoDir = Deno.env.get("DENO_DIR");
    this.#process = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      cwd: this.#opts.cacheDir,
      // Guests get no host env anyway; the host process does not hold the server's secrets either.
      clearEnv: true,
      env: { NO_COLOR: "1", ...(home && { HOME: home }), ...(denoDir && { DENO_DIR: denoDir }) },
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#read(this.#process.stdout);
    this.#process.status.then((status) => {
      const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
      this.#lose(undefined, how);
    });
  }

  async #read(stdout: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const frame of readFrames(stdout)) {
        const message = frame as HostMessage;
        if ("log" in message) {
          this.#opts.log(...message.log);
          continue;
        }
        if ("chunk" in message) {
          this.#streams.get(message.chunk[0])?.push(message.chunk[1]);
          continue;
        }
        if ("end" in message) {
          const [id, failure] = message.end;
          const pending = this.#pending.get(id);
          this.#pending.delete(id);
          if (pending) clearTimeout(pending.timer);
          this.#streams.get(id)?.end(failure ?? undefined);
          this.#streams.delete(id);
          continue;
        }
        const pending = this.#pending.get(message.id);
        if (!pending) continue;
        if (message.ok && message.streamed) {
          // The call goes on (its deadline too) until the body's end arrives.
          const body = new IncomingBody();
          this.#streams.set(message.id, body);
          pending.lost = (_late, why) => body.end(why);
          pending.resolve({ ...(message.value as object), body: body.readable, finished: body.finished });
          continue;
        }
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new OrcaError(message.error.code, message.error.message, { hint: message.error.hint }));
      }
    } catch (err) {
      this.#lose(undefined, `sent a bad frame (${(err as Error).message})`);
    }
  }

  /**
   * Sends a call; settles with its answer, or with `lost` if the host is killed or dies first. `killAfterMs`: the
   * call's deadline and grace, past which the host is deemed stuck (none for loads and stats).
   */
  request(
    call: DistributiveOmit<HostCall, "id">,
    killAfterMs: number | undefined,
    lost: (late: boolean, why: string) => unknown,
  ) {
    return new Promise<unknown>((resolve, reject) => {
      if (this.#dead) {
        reject(new OrcaError("unavailable", "the guest host is gone"));
        return;
      }
      const id = this.#next++;
      const timer = killAfterMs === undefined ? undefined : setTimeout(
        () => this.#lose(id, `stopped answering (a call ran ${killAfterMs} ms) and was killed`),
        killAfterMs,
      );
      const settle = (late: boolean, why: string) => {
        try {
          resolve(lost(late, why));
        } catch (err) {
          reject(err);
        }
      };
      this.#pending.set(id, {
        workload: "workload" in call ? call.workload : "desc" in call ? call.desc.id : "",
        resolve,
        reject,
        lost: settle,
        timer,
      });
      if (call.op === "http" && call.req.body instanceof ReadableStream) {
        const body = call.req.body;
        this.send({ ...call, id, req: { ...call.req, body: null }, streamedBody: true });
        this.#sendBody(id, body);
      } else {
        this.send({ ...call, id } as HostCall);
      }
    });
  }

  /** Sends a streamed request body after its call, in pieces; then its end. */
  async #sendBody(id: number, body: ReadableStream<Uint8Array>): Promise<void> {
    try {
      await sendPieces(body, (chunk) => {
        if (this.#dead) throw new Error("the host is gone");
        return this.send({ id, op: "body", chunk });
      });
    } catch {
      // The client went away mid-body (the guest reads an early end), or the host did.
    }
    await this.send({ id, op: "body", chunk: null });
  }

  /** Writes a call (after the host started); a write to a dead host is dropped. */
  send(call: HostCall): Promise<void> {
    return this.#ready.then(() => this.#writer?.write(encodeFrame(call))).catch(() => {});
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
    const workloads = new Set<string>();
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      workloads.add(pending.workload);
      pending.lost(id === lateId, `the ${this.name} ${why}`);
    }
    this.#pending.clear();
    this.#streams.clear();
    this.#onLost(why, [...workloads]);
  }
}

/** Most of a streamed body held for a slow client before the response is cut off. */
const MAX_BUFFERED_BODY = 32 * 1024 * 1024;

/** A streamed response body arriving from a host, chunk by chunk. */
class IncomingBody {
  readonly readable: ReadableStream<Uint8Array>;
  readonly finished: Promise<string | undefined>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #finish!: (failure: string | undefined) => void;
  #over = false;

  constructor() {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#over = true; // the client went away: what still comes is dropped
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: 1024 * 1024 }));
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  push(chunk: Uint8Array): void {
    if (this.#over) return;
    this.#controller.enqueue(chunk);
    if ((this.#controller.desiredSize ?? 0) < -MAX_BUFFERED_BODY) {
      this.#over = true;
      this.#controller.error(new Error("the client read too slowly: over 32 MiB of the response waited for it"));
    }
  }

  end(failure: string | undefined): void {
    if (!this.#over) {
      if (failure === undefined) this.#controller.close();
      else this.#controller.error(new Error(failure));
    }
    this.#over = true;
    this.#finish(failure);
  }
}

/** How to start a host: this same program in host mode (a compiled `orca`), or Deno on host.ts with few permissions. */
function hostCommand(cacheDir: string, idleMs: number): { command: string; args: string[] } {
  const exec = Deno.execPath();
  const hostArgs = ["--idle-ms", String(idleMs)];
  if (!/(^|[\\/])deno(\.exe)?$/.test(exec)) return { command: exec, args: ["__wasm-host", ...hostArgs] };
  return {
    command: exec,
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      // The compile cache, and the watchdog's worker (a Worker's module is read with the host's permissions).
      `--allow-read=${cacheDir},${new URL("./watchdog_worker.ts", import.meta.url).pathname}`,
      "--allow-net",
      new URL("./host.ts", import.meta.url).pathname,
      ...hostArgs,
    ],
  };
}
