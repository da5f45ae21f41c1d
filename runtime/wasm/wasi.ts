/**
 * The sandbox a Wasm guest runs in: a fresh WASI P2 import object per
 * instance, built from preview2-shim's browser flavour (the node flavour
 * leaks the host environment and allows all egress). The guest sees only its
 * declared env, no host files, no sockets, and outgoing HTTP only to hosts the
 * service allows.
 */

// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/cli.d.ts"
import * as cli from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/cli.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/io.d.ts"
import * as io from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/io.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/clocks.d.ts"
import * as clocks from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/clocks.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/random.d.ts"
import * as random from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/random.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/filesystem.d.ts"
import * as filesystem from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/filesystem.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/sockets.d.ts"
import * as sockets from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/sockets.js";
// @ts-types="../../node_modules/@bytecodealliance/preview2-shim/dist/browser/http.d.ts"
import * as http from "../../node_modules/@bytecodealliance/preview2-shim/dist/browser/http.js";
import { httpTypes } from "./http_call.ts";

/**
 * The request-scoped side of a guest: what it reads and where it writes.
 * Bound just before each call, so instances can be made ahead of time.
 */
export interface GuestIo {
  env: Record<string, string>;
  /** The whole of stdin (WAGI request bodies), or what reads a streamed one (empty when it ends). */
  stdin: Uint8Array | ((max: number) => Uint8Array | Promise<Uint8Array>);
  stdout(bytes: Uint8Array): void;
  stderr(bytes: Uint8Array): void;
  /**
   * After a blocking write to stdout: a promise while the reader of a streamed
   * response wants no more yet. The guest waits on it (suspended by JSPI, so the
   * response streams out meanwhile); its deadline keeps running.
   */
  drain?(): Promise<void> | undefined;
  /** When the call's deadline passes (performance.now() time): a guest's sleep ends there at the latest. */
  deadline?: number;
}

/**
 * How long after its call's deadline a guest's sleep ends at the latest: by then the executor's timer, due at the
 * deadline, has set the guest's interrupt flag (timers fire in the order they are due, so the margin covers their
 * millisecond rounding), and the guest stops at its next check.
 */
export const PAST_DEADLINE_MS = 20;

/** What one guest instance may reach, fixed for its life. */
export interface SandboxOptions {
  args: string[];
  /** `host` or `host:port` entries; `*.example.com` matches subdomains. */
  allowedHosts: readonly string[];
  /** Returns the io bound for the current call. */
  io(): GuestIo;
  /** The guest's mounts (see files.ts); without it the guest has no filesystem at all. */
  filesystem?: { preopens: unknown; types: unknown };
}

/** WASI interface versions guests are built against; every one maps to the same shim. */
const versions = [
  "",
  "@0.2.0",
  "@0.2.1",
  "@0.2.2",
  "@0.2.3",
  "@0.2.4",
  "@0.2.5",
  "@0.2.6",
  "@0.2.7",
  "@0.2.8",
  "@0.2.9",
  "@0.2.10",
  "@0.2.11",
  "@0.2.12",
];

type OutgoingRequest = InstanceType<typeof http.types.OutgoingRequest>;

/** Builds a fresh, isolated import object for one instance. */
export function sandboxImports(opts: SandboxOptions): Record<string, unknown> {
  let stdinOffset = 0;
  let stdinSource: Uint8Array | undefined;
  const guestCli = cli.createCli({
    arguments: [...opts.args],
    initialCwd: "/",
    stdin: {
      blockingRead(len: bigint) {
        const stdin = opts.io().stdin;
        if (typeof stdin === "function") {
          // A streamed body: blocking-read is an async import, so waiting for the next chunk suspends the guest.
          const checked = (chunk: Uint8Array) => {
            if (chunk.length === 0) throw { tag: "closed" };
            return chunk;
          };
          // A broken-off body is a stream error the guest sees (a bare exception would leave the call hanging).
          const failed = (err: Error) => {
            throw { tag: "last-operation-failed", val: io.ioErrorCreate(err.message) };
          };
          let next: Uint8Array | Promise<Uint8Array>;
          try {
            next = stdin(Number(len));
          } catch (err) {
            return failed(err as Error);
          }
          // The shim's type says a plain array; it hands back whatever this returns, and jco's glue awaits it.
          return (next instanceof Promise ? next.then(checked, failed) : checked(next)) as Uint8Array;
        }
        if (stdin !== stdinSource) [stdinSource, stdinOffset] = [stdin, 0];
        if (stdinOffset >= stdin.length) throw { tag: "closed" };
        const chunk = stdin.subarray(stdinOffset, stdinOffset + Number(len));
        stdinOffset += chunk.length;
        return chunk;
      },
      subscribe: () => io.pollableCreate(),
    },
    stdout: sink((bytes) => opts.io().stdout(bytes), () => opts.io().drain?.()),
    stderr: sink((bytes) => opts.io().stderr(bytes)),
  });
  const environment = {
    // Empty values are left out: jco's lowering of an empty string corrupts the
    // preview1 adapter's environ block (the next variable's text shows through).
    getEnvironment: () => Object.entries(opts.io().env).filter(([, value]) => value !== ""),
    getArguments: () => [...opts.args],
    initialCwd: () => "/",
  };
  // A sleep ends at the call's deadline at the latest: the guest's interrupt check then stops it (executor.ts).
  const monotonicClock = {
    resolution: () => clocks.monotonicClock.resolution(),
    now: () => clocks.monotonicClock.now(),
    subscribeInstant(instant: bigint) {
      const now = clocks.monotonicClock.now();
      return monotonicClock.subscribeDuration(instant > now ? instant - now : 0n);
    },
    subscribeDuration(duration: bigint) {
      const deadline = opts.io().deadline;
      if (deadline === undefined) return clocks.monotonicClock.subscribeDuration(duration);
      const untilDeadline = BigInt(Math.ceil((Math.max(0, deadline - performance.now()) + PAST_DEADLINE_MS) * 1e6));
      return clocks.monotonicClock.subscribeDuration(duration < untilDeadline ? duration : untilDeadline);
    },
  };
  const outgoingHandler = {
    handle(request: OutgoingRequest, options?: unknown) {
      const authority = request.authority() ?? "";
      if (!hostAllowed(authority, request.scheme(), opts.allowedHosts)) {
        throw { tag: "HTTP-request-denied" };
      }
      return http.outgoingHandler.handle(request, options as undefined);
    },
  };
  const base: Record<string, unknown> = {
    "wasi:cli/environment": environment,
    "wasi:cli/exit": guestCli.exit,
    "wasi:cli/stdin": guestCli.stdin,
    "wasi:cli/stdout": guestCli.stdout,
    "wasi:cli/stderr": guestCli.stderr,
    "wasi:cli/terminal-input": guestCli.terminalInput,
    "wasi:cli/terminal-output": guestCli.terminalOutput,
    "wasi:cli/terminal-stdin": guestCli.terminalStdin,
    "wasi:cli/terminal-stdout": guestCli.terminalStdout,
    "wasi:cli/terminal-stderr": guestCli.terminalStderr,
    // No preopens unless the service mounts files: then only those.
    "wasi:filesystem/preopens": opts.filesystem?.preopens ?? { getDirectories: () => [] },
    "wasi:filesystem/types": opts.filesystem?.types ?? filesystem.types,
    "wasi:io/error": io.error,
    "wasi:io/poll": io.poll,
    "wasi:io/streams": io.streams,
    "wasi:random/random": random.random,
    "wasi:random/insecure": random.insecure,
    "wasi:random/insecure-seed": random.insecureSeed,
    "wasi:clocks/monotonic-clock": monotonicClock,
    "wasi:clocks/wall-clock": clocks.wallClock,
    "wasi:http/types": httpTypes,
    "wasi:http/outgoing-handler": outgoingHandler,
    // The browser flavour's sockets answer "not-supported" to everything.
    "wasi:sockets/instance-network": sockets.instanceNetwork,
    "wasi:sockets/ip-name-lookup": sockets.ipNameLookup,
    "wasi:sockets/network": sockets.network,
    "wasi:sockets/tcp": sockets.tcp,
    "wasi:sockets/tcp-create-socket": sockets.tcpCreateSocket,
    "wasi:sockets/udp": sockets.udp,
    "wasi:sockets/udp-create-socket": sockets.udpCreateSocket,
  };
  // jco's glue looks each interface up by its versioned name once per instance: resolve the name on demand
  // rather than building every name at every version for every instance (that was a tenth of a C guest's call).
  const lookup = (key: string | symbol) => {
    if (typeof key !== "string") return undefined;
    const at = key.indexOf("@");
    if (at < 0) return base[key];
    return knownVersions.has(key.slice(at)) ? base[key.slice(0, at)] : undefined;
  };
  return new Proxy(base, {
    get: (_target, key) => lookup(key),
    has: (_target, key) => lookup(key) !== undefined,
  });
}

const knownVersions = new Set(versions);

let provided: ReadonlySet<string> | undefined;

/** The interfaces guests may import (by name, without a version). */
export function providedInterfaces(): ReadonlySet<string> {
  provided ??= new Set(Object.keys(sandboxImports({ args: [], allowedHosts: [], io: () => ({}) as GuestIo })));
  return provided;
}

/** Those of a component's imports (`ns:pkg/iface`, perhaps `@version`) no guest is given. */
export function unprovidedImports(imports: readonly string[]): string[] {
  return imports.filter((key) => {
    const at = key.indexOf("@");
    const name = at < 0 ? key : key.slice(0, at);
    return !providedInterfaces().has(name) || (at >= 0 && !knownVersions.has(key.slice(at)));
  });
}

/** What guests may import, for messages: `wasi:cli/{environment, exit, ...}; ...` and the versions. */
export function describeProvided(): string {
  const byPackage = new Map<string, string[]>();
  for (const name of providedInterfaces()) {
    const [pkg, iface] = name.split("/");
    byPackage.set(pkg, [...byPackage.get(pkg) ?? [], iface]);
  }
  const list = [...byPackage].map(([pkg, ifaces]) => `${pkg}/{${ifaces.join(", ")}}`).join("; ");
  return `${list} (WASI ${versions[1].slice(1)} to ${versions.at(-1)!.slice(1)})`;
}

function sink(write: (bytes: Uint8Array) => void, drain: () => Promise<void> | undefined = () => undefined) {
  return {
    write(contents: Uint8Array) {
      write(contents.slice());
    },
    // The shim returns what this returns, and blocking-write-and-flush is an async import: a promise suspends the guest.
    blockingWriteAndFlush(contents: Uint8Array) {
      write(contents.slice());
      return drain();
    },
    blockingFlush() {},
    flush() {},
  };
}

type Scheme = ReturnType<OutgoingRequest["scheme"]>;

/** Whether `authority` (host[:port]) is on the allow-list. */
export function hostAllowed(authority: string, scheme: Scheme, allowed: readonly string[]): boolean {
  if (!authority) return false;
  const defaultPort = scheme?.tag === "HTTP" ? "80" : "443";
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority.toLowerCase());
  if (!m) return false;
  const [host, port = defaultPort] = [m[1], m[2]];
  return allowed.some((entry) => {
    const e = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry.toLowerCase());
    if (!e) return false;
    const hostOk = e[1].startsWith("*.") ? host.endsWith(e[1].slice(1)) : host === e[1];
    return hostOk && (e[2] === undefined || e[2] === port);
  });
}
