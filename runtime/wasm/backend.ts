/**
 * What a guest backend is and speaks: an Executor in the server process, or a pool of guest host processes
 * (hosts.ts) that each run one. Plain data only (a workload's description, a request in, a response out), so the
 * same calls cross a process boundary as they are.
 */

import { OrcaError } from "../../errors.ts";
import type { ExecResult, HttpContext, JobInput, JobResult, LogLine, WorkloadSpec } from "../types.ts";
import type { PreparedComponent } from "./component.ts";

export interface WorkloadStats {
  instances: number;
  memoryBytes: number;
  notReused?: string;
  /** Why an isolated wasi:http handler gets a fresh instance per request rather than a reset one. */
  notReset?: string;
  /** Instances made since the workload was loaded. */
  made?: number;
}

/** Everything a host needs to run one workload's guests: plain data, sent to guest hosts as is. */
export interface WorkloadDesc {
  id: string;
  /** The service's name (argv[0] of commands) and its project, for messages. */
  name: string;
  project: string;
  prepared: PreparedComponent;
  env: Record<string, string>;
  allowedHosts: string[];
  mounts: { guestPath: string; rw: boolean; files: [string, Uint8Array][] }[];
  /** `[service.limits] timeout_ms`; the defaults below otherwise. */
  timeoutMs?: number;
  poolSize: number;
  /** `[service.wasm] instance`: `reuse` keeps a wasi:http handler's instances between requests. */
  instance?: "isolated" | "reuse";
  /** A reused instance is replaced after this many requests (default MAX_CALLS_PER_INSTANCE). */
  maxReuses?: number;
}

export interface WireRequest {
  method: string;
  url: string;
  headers: [string, string][];
  /** The whole body, or (one over STREAM_AFTER_BYTES or of unknown length, body.ts) a stream of it. */
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  ctx: HttpContext;
}

export interface WireResponse {
  status: number;
  headers: [string, string][];
  /** The whole body, or (a response larger than STREAM_AFTER_BYTES, body.ts) a stream the guest is still writing. */
  body: Uint8Array | ReadableStream<Uint8Array>;
  /** Set when the guest trapped or missed its deadline (the response is then a 500 or 504 of ours). */
  failure?: string;
  /** A streamed body: settles when the guest is done, with its failure (the stream then errors) if any. */
  finished?: Promise<string | undefined>;
}

/** A job's result; `incident` when the guest trapped rather than exiting on its own. */
export type JobOutcome = JobResult & { incident?: boolean };

export type LogSink = (workload: string, stream: LogLine["stream"], text: string) => void;

/** Default deadlines: an HTTP request, and a job (cron firing, message). */
export const HTTP_TIMEOUT_MS = 10_000;
export const JOB_TIMEOUT_MS = 30_000;

/** Where guest calls run: an Executor in this process, or a pool of guest host processes (hosts.ts). */
export interface GuestBackend {
  /** Makes the workload ready to serve (compiled, first instance made); errors surface here. */
  load(desc: WorkloadDesc): Promise<void>;
  /** Drops the workload's instances and compiled code; calls in flight finish. */
  unload(id: string): void;
  /** Instances alive, the bytes of their memories, and why requests are not served by reused instances if asked. */
  stats(id: string): Promise<WorkloadStats>;
  /** `begin`: awaited just before the guest is handed the call (a guest host tells its server: hosts.ts retries). */
  http(id: string, req: WireRequest, begin?: () => Promise<void>): Promise<WireResponse>;
  job(id: string, input: JobInput, begin?: () => Promise<void>): Promise<JobOutcome>;
  exec(id: string, cmd: string[]): Promise<ExecResult>;
  close(): void;
}

export function wireError(status: number, message: string): WireResponse {
  return {
    status,
    headers: [["content-type", "application/json"]],
    body: new TextEncoder().encode(JSON.stringify({ error: message, status })),
  };
}

/** The files a service mounts (`[service.wasm] files`), read from the node's store by their hashes. */
export async function mountsOf(
  spec: WorkloadSpec,
  loadBlob: ((hash: string) => Promise<Uint8Array>) | undefined,
): Promise<WorkloadDesc["mounts"]> {
  const mounts: WorkloadDesc["mounts"] = [];
  for (const [guestPath, m] of Object.entries(spec.service.wasm.files)) {
    const files: [string, Uint8Array][] = [];
    for (const [path, hash] of Object.entries(m.tree ?? {})) {
      if (!loadBlob) throw new OrcaError("unsupported", "this runtime has no file store for mounts");
      files.push([path, await loadBlob(hash)]);
    }
    mounts.push({ guestPath, rw: m.rw, files });
  }
  return mounts;
}

/** How a loaded guest runs, for its log: "wasi:http handler", "WAGI command, preview1", ... */
export function describeGuest(kind: "http" | "handler" | "command", desc: WorkloadDesc): string {
  // A preview1 core module runs on the direct host unless it mounts files (executor.ts).
  const direct = desc.prepared.preview1 && desc.mounts.length === 0 ? desc.prepared.preview1 : undefined;
  const what = kind === "http"
    ? "wasi:http handler"
    : kind === "handler"
    ? "message handler"
    : direct
    ? "WAGI command, preview1"
    : "WAGI command";
  const interruptible = direct?.interruptible ?? desc.prepared.interruptible;
  return `${what}${interruptible ? "" : ", without deadline checks"}`;
}
