/** One guest instance and the plumbing around a call to it. */

import { OrcaError } from "../../errors.ts";
import { LineSplitter } from "../logs.ts";
import type { GuestExports } from "./component.ts";
import type { GuestIo } from "./wasi.ts";
import type { Snapshot } from "./snapshot.ts";

/** One instance, with the io slot bound per call. */
export interface Guest {
  exports: GuestExports;
  io: GuestIo;
  memories: WebAssembly.Memory[];
  /** Interrupt flags of its core instances (see instrument.ts). */
  flags: SharedArrayBuffer[];
  /** Where the watchdog holds its flags (watchdog.ts). */
  slot?: number;
  /** Calls served (handlers reuse their instance). */
  calls: number;
  /** Bytes of its memories when it was made (a reused instance that grows much past them is replaced). */
  firstBytes: number;
  /** Gives a reusable instance's memories back once it is dropped. */
  release?: () => void;
  /** An isolated instance's state right after instantiation, put back after each call (snapshot.ts). */
  snapshot?: Snapshot;
}

const NO_INPUT = new Uint8Array();

/** Io that sends the guest's stdout and stderr to its service's log, line by line. */
export function logIo(
  append: (stream: "stdout" | "stderr", line: string) => void,
  env: Record<string, string>,
): GuestIo & { flush(): void } {
  // Made on the first write: most calls write nothing, and a splitter's decoder costs more than the call itself.
  let out: LineSplitter | undefined;
  let err: LineSplitter | undefined;
  return {
    env,
    stdin: NO_INPUT,
    stdout: (b) => (out ??= new LineSplitter((line) => append("stdout", line))).write(b),
    stderr: (b) => (err ??= new LineSplitter((line) => append("stderr", line))).write(b),
    flush: () => {
      out?.flush();
      err?.flush();
    },
  };
}

/** Runs a command guest; returns its exit code (traps propagate). */
export async function runCommand(guest: Guest): Promise<number> {
  if (guest.exports.kind !== "command") throw new OrcaError("internal", "not a command guest");
  try {
    await guest.exports.run();
    return 0;
  } catch (err) {
    // wasi:cli/exit surfaces as a thrown ComponentExit carrying the code.
    if (err && typeof err === "object" && "exitError" in err && "code" in err) return Number(err.code);
    throw err;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof WebAssembly.RuntimeError) {
    return /trap/.test(err.message) ? err.message : `wasm trap: ${err.message}`;
  }
  if (err instanceof Error) return err.message;
  return typeof err === "object" ? JSON.stringify(err) : String(err);
}

export function errorResponse(status: number, message: string): Response {
  return Response.json({ error: message, status }, { status });
}
