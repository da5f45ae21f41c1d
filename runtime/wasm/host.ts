/**
 * A guest host: a process of its own that runs Wasm guests for the server.
 * The server (hosts.ts) starts one per core, sends it prepared components and
 * calls over stdin, and reads results and log lines from stdout (wire.ts).
 * It runs with only the permissions guests need (read the compile cache, the
 * network for allowed hosts), and the server kills it if a guest stops it
 * from answering.
 *
 * @module
 */

import { OrcaError } from "../../errors.ts";
import type { JobInput } from "../types.ts";
import { Executor, type WireRequest, type WireResponse, type WorkloadDesc } from "./executor.ts";
import { errorText } from "./guest.ts";
import { encodeFrame, readFrames, sendPieces } from "./wire.ts";

/** A call from the server. `id` pairs it with its reply. */
export type HostCall =
  | { id: number; op: "load"; desc: WorkloadDesc }
  | { id: number; op: "unload"; workload: string }
  | { id: number; op: "http"; workload: string; req: WireRequest; streamedBody?: true }
  /** A piece of a streamed request body for call `id`; `null` at its end. */
  | { id: number; op: "body"; chunk: Uint8Array | null }
  | { id: number; op: "job"; workload: string; input: JobInput }
  | { id: number; op: "exec"; workload: string; cmd: string[] }
  | { id: number; op: "stats"; workload: string };

/**
 * What a host writes: a call's result or error, or a guest's log line. A
 * streamed response comes as a result with `streamed: true`, then its body's
 * chunks, then its end (with the guest's failure, if any).
 */
export type HostMessage =
  | { id: number; ok: true; value: unknown; streamed?: true }
  | { chunk: [id: number, bytes: Uint8Array] }
  | { end: [id: number, failure: string | null] }
  | { id: number; ok: false; error: { code: OrcaError["code"]; message: string; hint?: string } }
  | { log: [workload: string, stream: "stdout" | "stderr" | "system", text: string] };

/** The host's main loop; returns when the server closes stdin. `args`: `--idle-ms N`. */
export async function runHost(args: string[]): Promise<void> {
  // Ctrl-C reaches the whole process group: the server shuts down in order and then closes stdin, which ends the host
  // (its calls in flight finish first). The server stops a stuck host with SIGKILL.
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => {});
  const at = args.indexOf("--idle-ms");
  const idleMs = at >= 0 ? Number(args[at + 1]) : 60_000;
  const writer = Deno.stdout.writable.getWriter();
  const send = (message: HostMessage) =>
    // The server is gone when stdout breaks: nothing left to do.
    writer.write(encodeFrame(message)).catch(() => Deno.exit(0));
  const executor = new Executor({
    idleMs: Number.isFinite(idleMs) && idleMs > 0 ? idleMs : 60_000,
    log: (workload, stream, text) => send({ log: [workload, stream, text] }),
  });
  const answer = async (call: HostCall) => {
    try {
      const value = await perform(executor, call);
      if (isStreamed(value)) {
        const { body, finished, ...head } = value;
        send({ id: call.id, ok: true, value: { ...head, body: new Uint8Array() }, streamed: true });
        await stream(call.id, body, finished, send);
        return;
      }
      send({ id: call.id, ok: true, value });
    } catch (err) {
      const error = err instanceof OrcaError
        ? { code: err.code, message: err.message, ...(err.hint && { hint: err.hint }) }
        : { code: "internal" as const, message: errorText(err) };
      send({ id: call.id, ok: false, error });
    }
  };
  const bodies = new Map<number, ReadableStreamDefaultController<Uint8Array>>();
  for await (const frame of readFrames(Deno.stdin.readable)) {
    const call = frame as HostCall;
    if (call.op === "body") {
      const body = bodies.get(call.id);
      if (call.chunk) body?.enqueue(call.chunk);
      else {
        body?.close();
        bodies.delete(call.id);
      }
      continue;
    }
    if (call.op === "http" && call.streamedBody) {
      call.req.body = new ReadableStream<Uint8Array>({ start: (controller) => void bodies.set(call.id, controller) });
    }
    answer(call);
  }
  executor.close();
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
): Promise<void> {
  try {
    await sendPieces(body, (piece) => send({ chunk: [id, piece] }));
  } catch {
    // The guest failed mid-stream: `finished` says how.
  }
  await send({ end: [id, (await finished) ?? null] });
}

function perform(executor: Executor, call: HostCall): Promise<unknown> | unknown {
  switch (call.op) {
    case "load":
      return executor.load(call.desc);
    case "unload":
      return executor.unload(call.workload);
    case "body":
      return undefined; // handled as it arrives
    case "http":
      return executor.http(call.workload, call.req);
    case "job":
      return executor.job(call.workload, call.input);
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
