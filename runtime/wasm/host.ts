/**
 * A guest host: a process of its own that runs Wasm guests for the server.
 * The server (hosts.ts) starts one per core, sends it prepared components and
 * calls over a Unix socket the host connects to, and reads results and log
 * lines from it (wire.ts).
 * It runs with only the permissions guests need (read the compile cache, the
 * network for allowed hosts), and the server kills it if a guest stops it
 * from answering.
 *
 * @module
 */

import { OrcaError } from "../../errors.ts";
import type { JobInput } from "../types.ts";
import type { WireRequest, WireResponse, WorkloadDesc } from "./backend.ts";
import { Executor } from "./executor.ts";
import { errorText } from "./guest.ts";
import { FrameSender, readFrames, sendPieces } from "./wire.ts";

/** A call from the server. `id` pairs it with its reply. */
export type HostCall =
  | { id: number; op: "load"; desc: WorkloadDesc }
  | { id: number; op: "unload"; workload: string }
  | { id: number; op: "http"; workload: string; req: WireRequest; streamedBody?: true }
  /** A piece of a streamed request body for call `id` (sent when the host pulls); `null` at its end. */
  | { id: number; op: "body"; chunk: Uint8Array | null }
  /** The client of call `id` went away while its response streamed: the guest's writes fail from now on. */
  | { id: number; op: "cancel" }
  | { id: number; op: "job"; workload: string; input: JobInput }
  | { id: number; op: "exec"; workload: string; cmd: string[] }
  | { id: number; op: "stats"; workload: string };

/**
 * What a host writes: a call's result or error, or a guest's log line. A
 * streamed response comes as a result with `streamed: true`, then its body's
 * chunks, then its end (with the guest's failure, if any). A streamed request
 * body is pulled piece by piece as the guest reads it, and dropped when the
 * guest is done with it. `began`: the call is handed to its guest now (a call
 * lost with its host before that may be run again elsewhere).
 */
export type HostMessage =
  | { id: number; ok: true; value: unknown; streamed?: true }
  | { began: number }
  | { pull: number }
  | { drop: number }
  | { chunk: [id: number, bytes: Uint8Array] }
  | { end: [id: number, failure: string | null] }
  | { id: number; ok: false; error: { code: OrcaError["code"]; message: string; hint?: string } }
  | { log: [workload: string, stream: "stdout" | "stderr" | "system", text: string] };

/** The host's main loop; returns when the server closes the connection. `args`: `--idle-ms N --socket PATH`. */
export async function runHost(args: string[]): Promise<void> {
  // Ctrl-C reaches the whole process group: the server shuts down in order and then closes the connection, which
  // ends the host (its calls in flight finish first). The server stops a stuck host with SIGKILL.
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => {});
  const at = args.indexOf("--idle-ms");
  const idleMs = at >= 0 ? Number(args[at + 1]) : 60_000;
  const socketAt = args.indexOf("--socket");
  const socket = socketAt >= 0 ? args[socketAt + 1] : undefined;
  if (!socket) throw new Error("a guest host needs --socket PATH (its server's)");
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const sender = new FrameSender(conn);
  // The server is gone when the connection breaks: nothing left to do.
  const send = (message: HostMessage) => sender.send(message).catch(() => Deno.exit(0));
  const executor = new Executor({
    idleMs: Number.isFinite(idleMs) && idleMs > 0 ? idleMs : 60_000,
    log: (workload, stream, text) => send({ log: [workload, stream, text] }),
  });
  const bodies = new RequestBodies(send);
  /** Streamed responses going out: aborted when their client goes away. */
  const responses = new Map<number, AbortController>();
  const answer = async (call: HostCall) => {
    try {
      const value = await perform(executor, call, () => send({ began: call.id }));
      if (isStreamed(value)) {
        const { body, finished, ...head } = value;
        send({ id: call.id, ok: true, value: { ...head, body: new Uint8Array() }, streamed: true });
        const cancel = new AbortController();
        responses.set(call.id, cancel);
        await stream(call.id, body, finished, send, cancel.signal);
        return;
      }
      send({ id: call.id, ok: true, value });
    } catch (err) {
      const error = err instanceof OrcaError
        ? { code: err.code, message: err.message, ...(err.hint && { hint: err.hint }) }
        : { code: "internal" as const, message: errorText(err) };
      send({ id: call.id, ok: false, error });
    } finally {
      responses.delete(call.id);
      bodies.drop(call.id); // what the guest did not read of its request is not wanted
    }
  };
  // Nothing a client sends may end this loop: bodies ignore pieces for calls that are over.
  for await (const frame of readFrames(conn)) {
    const call = frame as HostCall;
    if (call.op === "body") bodies.push(call.id, call.chunk);
    else if (call.op === "cancel") responses.get(call.id)?.abort(new Error("the client went away"));
    else {
      if (call.op === "http" && call.streamedBody) call.req.body = bodies.open(call.id);
      answer(call);
    }
  }
  executor.close();
}

/**
 * The request bodies streaming in from the server, one per call. A piece is
 * asked for (`pull`) only when the guest reads, so a body waits in the
 * server (or the client) rather than in this host's memory, and nothing of it
 * is read before the guest is handed the call. A body the guest drops, or
 * whose call is over, is closed here and the server is told (`drop`); pieces
 * still on their way are ignored.
 */
class RequestBodies {
  readonly #open = new Map<number, { controller: ReadableStreamDefaultController<Uint8Array>; arrived?: () => void }>();
  readonly #send: (message: HostMessage) => Promise<void>;

  constructor(send: (message: HostMessage) => Promise<void>) {
    this.#send = send;
  }

  open(id: number): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (controller) => void this.#open.set(id, { controller }),
      pull: () =>
        new Promise<void>((arrived) => {
          const body = this.#open.get(id);
          if (!body) return arrived();
          body.arrived = arrived;
          this.#send({ pull: id });
        }),
      cancel: () => this.#forget(id),
    }, { highWaterMark: 0 });
  }

  /** A piece of call `id`'s body (`null`: its end); ignored when the call's body was dropped. */
  push(id: number, chunk: Uint8Array | null): void {
    const body = this.#open.get(id);
    if (!body) return;
    if (!chunk) this.#open.delete(id);
    if (!settle(() => chunk ? body.controller.enqueue(chunk) : body.controller.close())) this.#forget(id);
    body.arrived?.();
    body.arrived = undefined;
  }

  /** The call is over: its body is closed if the guest left it unread. */
  drop(id: number): void {
    const body = this.#open.get(id);
    if (!body) return;
    settle(() => body.controller.close());
    this.#forget(id);
  }

  #forget(id: number): void {
    const body = this.#open.get(id);
    if (!body) return;
    this.#open.delete(id);
    body.arrived?.();
    this.#send({ drop: id });
  }
}

/** Runs an enqueue or close; false when the stream was already closed or cancelled (then a no-op). */
function settle(change: () => void): boolean {
  try {
    change();
    return true;
  } catch (err) {
    if (err instanceof TypeError) return false; // "The stream controller cannot close or enqueue"
    throw err;
  }
}

function isStreamed(value: unknown): value is WireResponse & { body: ReadableStream<Uint8Array> } {
  return typeof value === "object" && value !== null && "body" in value && value.body instanceof ReadableStream;
}

/** Sends a streamed response body in pieces, then its end (with the guest's failure, if any). */
async function stream(
  id: number,
  body: ReadableStream<Uint8Array>,
  finished: Promise<string | undefined> | undefined,
  send: (message: HostMessage) => Promise<void>,
  cancel: AbortSignal,
): Promise<void> {
  try {
    // A cancel ends the guest's body: its next write fails (the client went away).
    await sendPieces(body, (piece) => send({ chunk: [id, piece] }), cancel);
  } catch {
    // The guest failed mid-stream: `finished` says how.
  }
  await send({ end: [id, (await finished) ?? null] });
}

function perform(executor: Executor, call: HostCall, begin: () => Promise<void>): Promise<unknown> | unknown {
  switch (call.op) {
    case "load":
      return executor.load(call.desc);
    case "unload":
      return executor.unload(call.workload);
    case "body":
    case "cancel":
      return undefined; // handled as they arrive
    case "http":
      return executor.http(call.workload, call.req, begin);
    case "job":
      return executor.job(call.workload, call.input, begin);
    case "exec":
      return executor.exec(call.workload, call.cmd);
    case "stats":
      return executor.stats(call.workload);
  }
}

if (import.meta.main) {
  await runHost(Deno.args);
  Deno.exit(0);
}
