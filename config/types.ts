/** The typed model of cluster.toml and service.toml (seeds 000 and 002). */

/** Which runtime runs a service. */
export type RuntimeKind = "wasm" | "container";

/** A GPU request (`[service.resources.gpu]`). */
export interface GpuRequest {
  count: number;
  vendor: "nvidia" | "amd";
  /** Minimum VRAM per GPU, in MB. */
  vram_min?: number;
}

/** `[service.resources]`: memory in bytes, cpu in cores. */
export interface Resources {
  memory?: number;
  cpu?: number;
  gpu?: GpuRequest;
}

/** `[service.placement]`. */
export interface Placement {
  node?: string;
  labels: Record<string, string>;
}

/** `[service.readiness]` / `[service.liveness]`. */
export interface Probe {
  path: string;
  interval_secs: number;
  timeout_secs: number;
  failure_threshold: number;
  initial_delay_secs: number;
}

/**
 * `[service.rollout]`: how a new version replaces the running one. `canary`: it first gets `canary_percent` of the
 * requests for `analysis_secs`, then all of them, unless its error rate or p99 latency crosses a limit first.
 */
export interface Rollout {
  strategy: "all" | "canary";
  canary_percent: number;
  analysis_secs: number;
  /** The largest share of 5xx answers (0-1). */
  max_error_rate: number;
  /** The largest 99th-percentile latency to the response's head, in ms. */
  max_p99_ms?: number;
}

/** A host folder a Wasm guest sees at a path of its own (`[service.wasm] files`). */
export interface FileMount {
  /** The folder as written (relative to service.toml), without the `:rw` suffix. */
  source: string;
  /** Writable: each instance gets its own copy, thrown away with it. */
  rw: boolean;
  /** `relative/path -> sha256` of every file, filled in when the folder is read. */
  tree?: Record<string, string>;
}

/** `[service.wasm]`: what a Wasm guest may reach beyond its own memory. */
export interface WasmCapabilities {
  /** Hosts (`name` or `name:port`) outgoing HTTP may reach; none by default. */
  allowed_hosts: string[];
  /** Guest path -> mount; nothing else of any filesystem is visible. */
  files: Record<string, FileMount>;
  /**
   * How a wasi:http service's requests get instances. `isolated` (default): each request a pristine instance, so
   * nothing of one request reaches the next. `reuse`: one instance serves many requests in turn (module-level state
   * lives on), recycled after a number of requests, a trap, a deadline, or memory growth.
   */
  instance?: "isolated" | "reuse";
}

/** `[service.limits]`: how long one call of a Wasm guest may run. */
export interface Limits {
  /** Deadline per request (default 10 s) or per job (default 30 s), in ms. */
  timeout_ms?: number;
  /** The largest request body the proxy lets through, in bytes (default 32 MiB; past it: 413). */
  max_body?: number;
  /** The most bytes of request header fields the proxy lets through (default 32 KiB; past it: 431). */
  max_header?: number;
}

/** `limits.max_body` when none is given. */
export const DEFAULT_MAX_BODY = 32 * 2 ** 20;
/** `limits.max_header` when none is given. */
export const DEFAULT_MAX_HEADER = 32 * 2 ** 10;

/** `tls = { cert, key }`: a service's own PEM files (paths as written), with their text once read. */
export interface TlsFiles {
  cert: string;
  key: string;
  cert_pem?: string;
  key_pem?: string;
}

/** One `[[service]]` block, validated and with defaults applied. */
export interface ServiceSpec {
  project: string;
  name: string;
  runtime: RuntimeKind;
  image?: string;
  /** The module path as written in service.toml (relative to that file). */
  module?: string;
  /** sha256 of the module bytes, set when the module was read. */
  module_hash?: string;
  /** Container command (overrides the image's). */
  command?: string[];
  /** Container mounts: `name:/path` (a named volume) or `/host/path:/path`, with an optional `:ro`. */
  volumes: string[];
  triggers: string[];
  replicas: number;
  port?: number;
  domain?: string;
  /** How `domain` is served over HTTPS: absent, a certificate from the ACME CA; `off`, HTTP only; or own files. */
  tls?: "off" | TlsFiles;
  /** False: plain HTTP keeps answering once the domain has a certificate (default: redirect to HTTPS). */
  https_redirect?: boolean;
  health?: string;
  aliases: string[];
  internal: boolean;
  env: Record<string, string>;
  resources: Resources;
  placement: Placement;
  readiness?: Probe;
  liveness?: Probe;
  rollout?: Rollout;
  wasm: WasmCapabilities;
  limits: Limits;
}

/** A GPU a node declares (`[[node.gpus]]`). */
export interface NodeGpu {
  vendor: "nvidia" | "amd";
  count: number;
  model?: string;
  vram?: number;
}

/** One `[[node]]` block of cluster.toml. */
export interface NodeSpec {
  address: string;
  name?: string;
  labels: Record<string, string>;
  gpus: NodeGpu[];
}

/** cluster.toml as a whole. */
export interface ClusterConfig {
  cluster: {
    name: string;
    domain?: string;
    acme_email?: string;
    log_level: string;
    network?: { provider: string; setup_key?: string };
  };
  nodes: NodeSpec[];
  /** `[gitops]`: what `orca gitops` follows when started without a repository. */
  gitops?: GitopsSpec;
}

export interface GitopsSpec {
  repo?: string;
  branch: string;
  /** The folder inside the repository that holds services/. */
  path: string;
  interval_ms: number;
  status_port: number;
  status_host: string;
  ssh_key_file?: string;
  token_file?: string;
  webhook_secret_file?: string;
}
