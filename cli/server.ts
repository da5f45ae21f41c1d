/** `orca server`: run a node (control plane, API, proxy, Wasm runtime). */

import { parseLabels, startServer } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import type { AcmeOptions } from "../proxy/acme.ts";
import { parseHost } from "../proxy/mod.ts";
import { VERSION } from "../version.ts";
import { type Command, orcaHome, type Values } from "./command.ts";

export function port(values: Values, name: string, fallback: number): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new OrcaError("usage", `--${name} must be a port number, got ${text}`);
  }
  return n;
}

/** `{[key]: N}` from a `--max-*-bytes N` flag (1 KiB to 1 GiB), or nothing when the flag is absent. */
function byteLimit(values: Values, name: string, key: "message" | "deploy" | "module"): Record<string, number> {
  const text = values[name] as string | undefined;
  if (text === undefined) return {};
  const n = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1024 && n <= 1024 ** 3)) {
    throw new OrcaError("usage", `--${name} must be a number of bytes from 1024 to 1073741824; got ${text}`);
  }
  return { [key]: n };
}

/** What to tell of a failure to listen on the API or proxy port (a port taken, or one that needs root). */
export function listenError(err: unknown, apiPort: number, httpPort: number, httpsPort?: number): unknown {
  const https = httpsPort === undefined ? "" : `, https ${httpsPort}`;
  if (err instanceof Deno.errors.AddrInUse) {
    return new OrcaError("unavailable", `a port is already in use (api ${apiPort}, http ${httpPort}${https})`, {
      hint: "stop what uses it, or pick others with --api-port / --http-port / --https-port",
    });
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    const low = [httpPort, httpsPort ?? 1024, apiPort].find((p) => p < 1024) ?? apiPort;
    return new OrcaError("unavailable", `not allowed to listen on port ${low}`, {
      hint: "ports below 1024 need root or CAP_NET_BIND_SERVICE; try --http-port 8080 --https-port 8443",
    });
  }
  return err;
}

/** Resolves on SIGINT or SIGTERM. */
export function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve());
    Deno.addSignalListener("SIGTERM", () => resolve());
  });
}

/** `--workers N`: guest host processes, 0-256; undefined when absent. */
/** `--NAME N`: a whole number of seconds from 1 to `max`, or `undefined` when not given. */
export function secondsFlag(values: Values, name: string, max: number): number | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return undefined;
  const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= max)) {
    throw new OrcaError("usage", `--${name} must be a whole number of seconds from 1 to ${max}; got ${text}`);
  }
  return n;
}

/** `--https-port`, and the ACME flags that go with it (the CA's extra root read from its file). */
export async function httpsFlags(
  values: Values,
): Promise<{ httpsPort?: number; acme?: Partial<AcmeOptions>; certCheckSecs?: number }> {
  const acmeFlags = ["acme-directory", "acme-email", "acme-ca-cert"].filter((f) => values[f] !== undefined);
  if (values["https-port"] === undefined) {
    if (acmeFlags.length > 0) throw new OrcaError("usage", `--${acmeFlags[0]} needs --https-port`);
    return {};
  }
  const httpsPort = port(values, "https-port", 443);
  const directory = values["acme-directory"] as string | undefined;
  if (directory !== undefined && !/^https:\/\/\S+$/.test(directory)) {
    throw new OrcaError("usage", `--acme-directory must be an https:// URL; got ${directory}`);
  }
  const email = values["acme-email"] as string | undefined;
  if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email)) {
    throw new OrcaError("usage", `--acme-email must be an email address; got ${email}`);
  }
  const caFile = values["acme-ca-cert"] as string | undefined;
  let caCert: string | undefined;
  if (caFile !== undefined) {
    try {
      caCert = await Deno.readTextFile(caFile);
    } catch (err) {
      throw new OrcaError("usage", `--acme-ca-cert ${caFile} cannot be read: ${(err as Error).message}`);
    }
    if (!caCert.includes("-----BEGIN CERTIFICATE-----")) {
      throw new OrcaError("usage", `--acme-ca-cert ${caFile} holds no PEM certificate`);
    }
  }
  const certCheckSecs = secondsFlag(values, "cert-check-secs", 86400);
  return {
    httpsPort,
    acme: {
      ...(directory !== undefined && { directory }),
      ...(email !== undefined && { email }),
      ...(caCert !== undefined && { caCert }),
    },
    ...(certCheckSecs !== undefined && { certCheckSecs }),
  };
}

export function workersFlag(values: Values): number | undefined {
  const text = values.workers as string | undefined;
  const workers = text === undefined ? undefined : Number(text);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0 && workers <= 256)) {
    throw new OrcaError("usage", `--workers must be a whole number from 0 to 256; got ${text}`);
  }
  return workers;
}

/** A `host:port` flag value, checked. */
export function hostPort(text: string, flag: string): string {
  const host = parseHost(text);
  if (!host || host.port === undefined || host.port === 0) {
    throw new OrcaError("usage", `${flag} must be host:port (a server's API address), got ${JSON.stringify(text)}`);
  }
  return text;
}

/** `--metrics-listen ADDR:PORT`: where metrics are served without a token. */
export function metricsListenFlag(values: Values): { metricsListen?: { hostname: string; port: number } } {
  const text = values["metrics-listen"] as string | undefined;
  if (text === undefined) return {};
  const host = parseHost(text);
  if (!host || host.port === undefined) {
    throw new OrcaError(
      "usage",
      `--metrics-listen must be ADDR:PORT (e.g. 10.0.0.5:9464), got ${JSON.stringify(text)}`,
    );
  }
  return { metricsListen: { hostname: host.hostname.replace(/^\[(.*)\]$/, "$1"), port: host.port } };
}

export const serverCommand: Command = {
  name: "server",
  summary: "Run an Orca node: the control plane and its API, the proxy, and the Wasm runtime.",
  usage: "orca server [--api-port 6880] [--http-port 80] [--listen 0.0.0.0] [--home DIR] [--join ADDR --token T]",
  flags: [
    "--api-port N      REST API port (default 6880)",
    "--http-port N     proxy port for routed traffic (default 80)",
    "--https-port N    HTTPS port for the services' domains, certificates from ACME (default: HTTP only)",
    "--acme-directory URL  the ACME CA's directory (default Let's Encrypt production)",
    "--acme-email ADDR the ACME account's contact address",
    "--acme-ca-cert FILE   trust this CA (PEM) for the directory's HTTPS (tests, private CAs)",
    "--cert-check-secs N   how often the leader looks for certificates to get or renew (default 60)",
    "--listen ADDR     address to bind (default 0.0.0.0)",
    "--metrics-listen ADDR:PORT  also serve GET /metrics there without a token (always at /api/v1/metrics)",
    "--home DIR        data dir (default $ORCA_HOME, else ~/.orca)",
    "--pool-size N     pre-made Wasm instances per service (default 4)",
    "--docker-socket P Docker engine socket for container services (default /var/run/docker.sock)",
    "--idle-ms N       a Wasm service idle this long drops its instances (default 60000)",
    "--workers N       guest host processes that run Wasm guests (default: one per core; 0: in the server)",
    "--max-message-bytes N  largest queue publish (a message or an NDJSON batch) or event body (default 1048576)",
    "--max-deploy-bytes N   largest deploy request JSON (default 8388608)",
    "--max-module-bytes N   largest module or mounted file upload (default 134217728)",
    "--join ADDR       join the cluster of the server whose API is at ADDR (host:port) instead of starting one",
    "--token T         the cluster's token, to join it (the content of cluster.token on one of its servers)",
    "--advertise ADDR  where peers and clients reach this server's API (host:port; default: --listen and --api-port)",
    "--labels K=V,...  this server's labels, for placement (e.g. zone=eu-1,role=gpu)",
    "--node-timeout-secs N  a node silent this long is unhealthy: its replicas move elsewhere (default 30)",
    "--watchdog-secs N how often the watchdog checks every replica here: restarts, routes, orphans (default 30)",
    "--no-workloads    run the control plane only: the scheduler places no replica here",
  ],
  options: {
    "api-port": { type: "string" },
    "http-port": { type: "string" },
    "https-port": { type: "string" },
    "metrics-listen": { type: "string" },
    "acme-directory": { type: "string" },
    "acme-email": { type: "string" },
    "acme-ca-cert": { type: "string" },
    "cert-check-secs": { type: "string" },
    listen: { type: "string" },
    home: { type: "string" },
    "pool-size": { type: "string" },
    "docker-socket": { type: "string" },
    "idle-ms": { type: "string" },
    workers: { type: "string" },
    "max-message-bytes": { type: "string" },
    "max-deploy-bytes": { type: "string" },
    "max-module-bytes": { type: "string" },
    join: { type: "string" },
    token: { type: "string" },
    advertise: { type: "string" },
    labels: { type: "string" },
    "node-timeout-secs": { type: "string" },
    "watchdog-secs": { type: "string" },
    "no-workloads": { type: "boolean" },
  },
  maxArgs: 0,
  async run(values) {
    const home = (values.home as string | undefined) ?? orcaHome();
    const apiPort = port(values, "api-port", 6880);
    const httpPort = port(values, "http-port", 80);
    const poolSize = port(values, "pool-size", 4);
    const idleText = values["idle-ms"] as string | undefined;
    const idleMs = idleText === undefined ? undefined : Number(idleText);
    if (idleMs !== undefined && !(Number.isInteger(idleMs) && idleMs >= 100)) {
      throw new OrcaError("usage", `--idle-ms must be a whole number of milliseconds, at least 100; got ${idleText}`);
    }
    const workers = workersFlag(values);
    const limits = {
      ...byteLimit(values, "max-message-bytes", "message"),
      ...byteLimit(values, "max-deploy-bytes", "deploy"),
      ...byteLimit(values, "max-module-bytes", "module"),
    };
    const nodeTimeoutSecs = secondsFlag(values, "node-timeout-secs", 99999);
    const watchdogSecs = secondsFlag(values, "watchdog-secs", 86400);
    const https = await httpsFlags(values);
    let server;
    try {
      server = await startServer({
        home,
        apiPort,
        httpPort,
        ...https,
        ...metricsListenFlag(values),
        hostname: (values.listen as string) ?? "0.0.0.0",
        poolSize,
        ...(values["docker-socket"] !== undefined && { dockerSocket: values["docker-socket"] as string }),
        ...(idleMs !== undefined && { idleMs }),
        ...(workers !== undefined && { workers }),
        limits,
        ...(values.join !== undefined && { join: hostPort(values.join as string, "--join") }),
        ...(values.token !== undefined && { token: values.token as string }),
        ...(values.advertise !== undefined && { advertise: hostPort(values.advertise as string, "--advertise") }),
        ...(values.labels !== undefined && { labels: parseLabels(values.labels as string) }),
        ...(nodeTimeoutSecs !== undefined && { nodeTimeoutSecs }),
        ...(watchdogSecs !== undefined && { watchdogSecs }),
        ...(values["no-workloads"] === true && { noWorkloads: true }),
      });
    } catch (err) {
      throw listenError(err, apiPort, httpPort, https.httpsPort);
    }
    console.log(`orca ${VERSION} server ready`);
    console.log(`  api    ${server.apiUrl}/api/v1`);
    console.log(`  proxy  ${server.httpUrl}`);
    if (server.httpsUrl) console.log(`  https  ${server.httpsUrl}`);
    if (server.metricsUrl) console.log(`  metrics ${server.metricsUrl}`);
    console.log(`  data   ${home}`);
    await untilStopped();
    console.error("orca: shutting down");
    await server.close();
    return 0;
  },
};
