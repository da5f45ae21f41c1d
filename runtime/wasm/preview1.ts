/**
 * A direct WASI preview1 host for core-module commands (a C guest built with
 * wasi-libc, served WAGI-style or run as a job). One core instance per call
 * and the imports below: no component adapter and no generated glue in
 * between, which is most of a component's cost per call.
 *
 * The sandbox is the same as a component's (wasi.ts): the declared env and
 * args, stdin and stdout bound per call, no files at all (a service with
 * `[service.wasm] files` runs as a component instead), no sockets. Anything
 * not below answers ENOSYS.
 *
 * Reads of stdin and writes to stdout may wait (a streamed body, a slow
 * client): those imports are JSPI-suspending, so the guest is suspended and
 * the event loop runs on.
 */

import { MEMORY_IMPORT } from "./limits.ts";
import { type GuestIo, PAST_DEADLINE_MS } from "./wasi.ts";

/** JS Promise Integration, on in Deno 2.9 (lib.deno's WebAssembly types predate it). */
const jspi = WebAssembly as unknown as {
  Suspending: new (fn: (...args: never[]) => unknown) => unknown;
  promising: (fn: (...args: never[]) => unknown) => (...args: unknown[]) => Promise<unknown>;
};

const ERRNO = { SUCCESS: 0, BADF: 8, FAULT: 21, INVAL: 28, IO: 29, NOSYS: 52, SPIPE: 70, NOTCAPABLE: 76 } as const;
/** fd_fdstat's rights: read, write (stdio is neither seekable nor a tty). */
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;
const CLOCK_REALTIME = 0;
const EVENTTYPE_CLOCK = 0;
const SUBCLOCKFLAG_ABSTIME = 1;

/** proc_exit: `runCommand` (guest.ts) reads the code, as from a component's wasi:cli/exit. */
class ProcExit extends Error {
  readonly exitError = true;
  constructor(readonly code: number) {
    super(`exit with code ${code}`);
  }
}

export interface Preview1Options {
  args: string[];
  /** Returns the io bound for the current call. */
  io(): GuestIo;
}

/** A preview1 command ready to run: its imports, and `bind` to hand it its instance once made. */
export interface Preview1Host {
  imports: WebAssembly.Imports;
  bind(instance: WebAssembly.Instance): () => Promise<void>;
}

/**
 * The imports of one instance. `module` says which it asks for: the rest answer ENOSYS. `memory`: for a module
 * that imports its memory (limits.ts, importMainMemory).
 */
export function preview1Host(
  module: WebAssembly.Module,
  opts: Preview1Options,
  memory?: WebAssembly.Memory,
): Preview1Host {
  const view = () => new DataView(memory!.buffer);
  const bytes = () => new Uint8Array(memory!.buffer);
  const encoder = new TextEncoder();
  let stdinSource: GuestIo["stdin"] | undefined;
  let stdinOffset = 0;

  /** Writes `strings` (encoded, NUL-terminated) at `buf`, their addresses at `ptrs`. */
  const putStrings = (strings: Uint8Array[], ptrs: number, buf: number) => {
    const v = view();
    const b = bytes();
    for (const encoded of strings) {
      v.setUint32(ptrs, buf, true);
      b.set(encoded, buf);
      ptrs += 4;
      buf += encoded.length;
    }
    return ERRNO.SUCCESS;
  };
  const putSizes = (strings: Uint8Array[], countPtr: number, sizePtr: number) => {
    const v = view();
    v.setUint32(countPtr, strings.length, true);
    v.setUint32(sizePtr, strings.reduce((n, s) => n + s.length, 0), true);
    return ERRNO.SUCCESS;
  };
  const args = opts.args.map((a) => encoder.encode(`${a}\0`));
  // Empty values are left out, as for components (wasi.ts).
  // Encoded once per call's env (a guest asks for the sizes, then the strings).
  let environFor: Record<string, string> | undefined;
  let environ: Uint8Array[] = [];
  const environNow = () => {
    const env = opts.io().env;
    if (env !== environFor) {
      environFor = env;
      environ = Object.entries(env).filter(([, v]) => v !== "").map(([k, v]) => encoder.encode(`${k}=${v}\0`));
    }
    return environ;
  };

  const gather = (iovs: number, count: number) => {
    const v = view();
    const parts: Uint8Array[] = [];
    let size = 0;
    for (let i = 0; i < count; i++) {
      const ptr = v.getUint32(iovs + i * 8, true);
      const len = v.getUint32(iovs + i * 8 + 4, true);
      parts.push(bytes().slice(ptr, ptr + len));
      size += len;
    }
    if (parts.length === 1) return parts[0];
    const all = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  };
  const scatter = (iovs: number, count: number, data: Uint8Array) => {
    const v = view();
    let at = 0;
    for (let i = 0; i < count && at < data.length; i++) {
      const ptr = v.getUint32(iovs + i * 8, true);
      const len = v.getUint32(iovs + i * 8 + 4, true);
      const part = data.subarray(at, at + len);
      bytes().set(part, ptr);
      at += part.length;
    }
    return at;
  };
  const iovLength = (iovs: number, count: number) => {
    const v = view();
    let n = 0;
    for (let i = 0; i < count; i++) n += v.getUint32(iovs + i * 8 + 4, true);
    return n;
  };

  const fdWrite = (fd: number, iovs: number, count: number, written: number): number | Promise<number> => {
    fd >>>= 0;
    if (fd !== 1 && fd !== 2) return ERRNO.BADF;
    const data = gather(iovs, count);
    const io = opts.io();
    if (fd === 2) io.stderr(data);
    else io.stdout(data);
    view().setUint32(written, data.length, true);
    // After a write to stdout the guest may have to wait: the client has enough queued, or it is time to let the
    // bytes out (body.ts).
    const wait = fd === 1 ? io.drain?.() : undefined;
    return wait ? wait.then(() => ERRNO.SUCCESS) : ERRNO.SUCCESS;
  };

  const fdRead = (fd: number, iovs: number, count: number, read: number): number | Promise<number> => {
    fd >>>= 0;
    if (fd !== 0) return ERRNO.BADF;
    const max = iovLength(iovs, count);
    const stdin = opts.io().stdin;
    const deliver = (chunk: Uint8Array) => {
      view().setUint32(read, scatter(iovs, count, chunk), true);
      return ERRNO.SUCCESS;
    };
    if (typeof stdin === "function") {
      // A streamed body: waiting for the next piece suspends the guest. Empty is the end.
      try {
        const next = stdin(max);
        return next instanceof Promise ? next.then(deliver, () => ERRNO.IO) : deliver(next);
      } catch {
        return ERRNO.IO;
      }
    }
    if (stdin !== stdinSource) [stdinSource, stdinOffset] = [stdin, 0];
    const chunk = stdin.subarray(stdinOffset, stdinOffset + max);
    stdinOffset += chunk.length;
    return deliver(chunk);
  };

  const now = (clock: number) =>
    clock === CLOCK_REALTIME
      ? BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6))
      : BigInt(Math.round(performance.now() * 1e6));

  /** Clock subscriptions wait (suspended) for the earliest; stdio ones are ready at once. */
  const pollOneoff = (subs: number, events: number, count: number, countPtr: number): number | Promise<number> => {
    if (count === 0) return ERRNO.INVAL;
    const v = view();
    let waitNs: bigint | undefined;
    const ready: { userdata: bigint; type: number }[] = [];
    const clocks: { userdata: bigint; dueNs: bigint }[] = [];
    for (let i = 0; i < count; i++) {
      const at = subs + i * 48;
      const userdata = v.getBigUint64(at, true);
      const type = v.getUint8(at + 8);
      if (type === EVENTTYPE_CLOCK) {
        const clock = v.getUint32(at + 16, true);
        const timeout = v.getBigUint64(at + 24, true);
        const absolute = (v.getUint16(at + 40, true) & SUBCLOCKFLAG_ABSTIME) !== 0;
        const dueNs = absolute ? timeout - now(clock) : timeout;
        clocks.push({ userdata, dueNs });
        if (waitNs === undefined || dueNs < waitNs) waitNs = dueNs;
      } else {
        ready.push({ userdata, type });
      }
    }
    const report = (list: { userdata: bigint; type: number }[]) => {
      const v = view();
      list.forEach((e, i) => {
        const at = events + i * 32;
        v.setBigUint64(at, e.userdata, true);
        v.setUint16(at + 8, ERRNO.SUCCESS, true);
        v.setUint8(at + 10, e.type);
        v.setBigUint64(at + 16, 0n, true);
        v.setUint16(at + 24, 0, true);
      });
      v.setUint32(countPtr, list.length, true);
      return ERRNO.SUCCESS;
    };
    if (ready.length > 0 || waitNs === undefined) return report(ready);
    const due = clocks.filter((c) => c.dueNs <= waitNs!).map((c) => ({ userdata: c.userdata, type: EVENTTYPE_CLOCK }));
    // A sleep ends just after the call's deadline at the latest (the executor's timer sets the interrupt flag at the
    // deadline, so the guest's next check stops it), and a timer cannot wait longer than 2^31-1 ms.
    const deadline = opts.io().deadline;
    const untilDeadline = deadline === undefined
      ? Infinity
      : Math.max(0, deadline - performance.now()) + PAST_DEADLINE_MS;
    const ms = Math.min(Math.max(0, Number(waitNs) / 1e6), untilDeadline, 2 ** 31 - 1);
    return new Promise((resolve) => setTimeout(() => resolve(report(due)), ms));
  };

  const wasi: Record<string, (...args: never[]) => number | Promise<number>> = {
    args_get: (ptrs: number, buf: number) => putStrings(args, ptrs, buf),
    args_sizes_get: (count: number, size: number) => putSizes(args, count, size),
    environ_get: (ptrs: number, buf: number) => putStrings(environNow(), ptrs, buf),
    environ_sizes_get: (count: number, size: number) => putSizes(environNow(), count, size),
    fd_write: fdWrite,
    fd_read: fdRead,
    fd_fdstat_get: (fd: number, stat: number) => {
      if (fd >>> 0 > 2) return ERRNO.BADF;
      const v = view();
      v.setUint8(stat, 0); // filetype unknown: not a tty, so stdout is fully buffered
      v.setUint16(stat + 2, 0, true);
      v.setBigUint64(stat + 8, fd === 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE, true);
      v.setBigUint64(stat + 16, 0n, true);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_set_flags: (fd: number) => fd >>> 0 > 2 ? ERRNO.BADF : ERRNO.NOTCAPABLE,
    // No preopens: the guest has no filesystem at all.
    fd_prestat_get: () => ERRNO.BADF,
    fd_prestat_dir_name: () => ERRNO.BADF,
    path_open: () => ERRNO.NOTCAPABLE,
    fd_seek: (fd: number) => fd >>> 0 > 2 ? ERRNO.BADF : ERRNO.SPIPE,
    fd_close: (fd: number) => fd >>> 0 > 2 ? ERRNO.BADF : ERRNO.SUCCESS,
    fd_sync: (fd: number) => fd >>> 0 > 2 ? ERRNO.BADF : ERRNO.SUCCESS,
    clock_time_get: (clock: number, _precision: bigint, time: number) => {
      if (clock > 3) return ERRNO.INVAL;
      view().setBigUint64(time, now(clock), true);
      return ERRNO.SUCCESS;
    },
    clock_res_get: (clock: number, res: number) => {
      if (clock > 3) return ERRNO.INVAL;
      view().setBigUint64(res, 1000n, true);
      return ERRNO.SUCCESS;
    },
    random_get: (buf: number, len: number) => {
      [buf, len] = [buf >>> 0, len >>> 0];
      if (buf + len > memory!.buffer.byteLength) return ERRNO.FAULT;
      for (let at = 0; at < len; at += 65536) {
        crypto.getRandomValues(bytes().subarray(buf + at, buf + Math.min(len, at + 65536)));
      }
      return ERRNO.SUCCESS;
    },
    poll_oneoff: pollOneoff,
    sched_yield: () => ERRNO.SUCCESS,
    proc_exit: (code: number) => {
      throw new ProcExit(code);
    },
  };
  // Calls that may wait are JSPI-suspending; a call that does not wait returns at once.
  const suspending = new Set(["fd_write", "fd_read", "poll_oneoff"]);
  const imports: Record<string, Record<string, unknown>> = {};
  if (memory) imports[MEMORY_IMPORT.module] = { [MEMORY_IMPORT.name]: memory };
  for (const { module: ns, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== "function") continue; // the memory, above
    const own = ns === "wasi_snapshot_preview1" || ns === "wasi_unstable" ? wasi[name] : undefined;
    const fn = own ?? (() => ERRNO.NOSYS);
    (imports[ns] ??= {})[name] = own && suspending.has(name) ? new jspi.Suspending(fn) : fn;
  }
  return {
    imports: imports as WebAssembly.Imports,
    bind(instance) {
      const exported = instance.exports.memory;
      if (!(exported instanceof WebAssembly.Memory)) throw new Error("the module exports no memory");
      memory = exported;
      const start = instance.exports._start;
      if (typeof start !== "function") throw new Error("the module has no _start (it is not a WASI command)");
      const run = jspi.promising(start as () => unknown);
      return async () => {
        // A reset instance runs again (component.ts): stdin starts over with each call's.
        stdinSource = undefined;
        stdinOffset = 0;
        await run();
      };
    },
  };
}
