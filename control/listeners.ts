/**
 * A node's listeners, servers and workers alike: its API, its proxy on HTTP
 * and (with `--https-port`) HTTPS, and (with `--metrics-listen`) metrics
 * without a token. They open together at the start, so a port in use fails
 * the start with nothing left open, and the proxy's address is known before
 * the node registers; the proxy answers 503 until the node binds its
 * handlers.
 */

import { OrcaError } from "../errors.ts";
import { type CertPair, TlsServer } from "../proxy/tls.ts";
import type { NodeMetrics } from "./metrics.ts";
import { serveMetrics } from "./metrics_server.ts";
import type { ProxyHandler } from "./node_proxy.ts";

export interface ListenOptions {
  hostname: string;
  apiPort: number;
  httpPort: number;
  httpsPort?: number;
  metricsListen?: { hostname: string; port: number };
  /** What the node is, for the 503 it answers while it starts ("server", "worker"). */
  what: string;
  log: (line: string) => void;
}

type Handler = (request: Request, remote?: Deno.NetAddr) => Response | Promise<Response>;

export class NodeListeners {
  readonly api: Deno.HttpServer<Deno.NetAddr>;
  readonly http: Deno.HttpServer<Deno.NetAddr>;
  readonly https?: TlsServer;
  readonly metrics?: Deno.HttpServer<Deno.NetAddr>;
  #plain: Handler;
  #secure: Handler;
  #lookup = (_name: string): CertPair | undefined => undefined;
  #metrics?: NodeMetrics;

  /** Opens them all, or none (throws after closing those it opened). `api` answers the API port at once. */
  constructor(opts: ListenOptions, api: (request: Request) => Response | Promise<Response>) {
    const starting = () => new OrcaError("unavailable", `the ${opts.what} is starting`, { retryAfter: 1 }).toResponse();
    this.#plain = starting;
    this.#secure = starting;
    const onListen = () => {};
    const opened: { shutdown(): Promise<void> }[] = [];
    try {
      this.api = Deno.serve({ hostname: opts.hostname, port: opts.apiPort, onListen }, api);
      opened.push(this.api);
      this.http = Deno.serve(
        { hostname: opts.hostname, port: opts.httpPort, onListen },
        (r, info) => this.#plain(r, info.remoteAddr),
      );
      opened.push(this.http);
      if (opts.httpsPort !== undefined) {
        this.https = new TlsServer(
          { hostname: opts.hostname, port: opts.httpsPort, lookup: (name) => this.#lookup(name) },
          (r, info) => this.#secure(r, info.remoteAddr),
        );
        opened.push(this.https);
      }
      if (opts.metricsListen) this.metrics = serveMetrics(opts.metricsListen, () => this.#metrics, opts.log);
    } catch (err) {
      for (const server of opened.reverse()) server.shutdown().catch(() => {});
      throw err;
    }
  }

  /** The node is up: its proxy handlers, the certificates its HTTPS presents, its metrics. */
  bind(h: { plain: ProxyHandler; secure: ProxyHandler; lookup: (name: string) => CertPair | undefined }): void {
    this.#plain = h.plain;
    this.#secure = h.secure;
    this.#lookup = h.lookup;
  }

  set nodeMetrics(metrics: NodeMetrics) {
    this.#metrics = metrics;
  }

  /** The proxy's ports (HTTP, and HTTPS when served). */
  proxyPorts(): number[] {
    return [this.http.addr.port, ...(this.https ? [this.https.addr.port] : [])];
  }

  /** Where each listens, as URLs for the ready banner. */
  urls(): { api: string; http: string; https?: string; metrics?: string } {
    const url = (addr: Deno.NetAddr) =>
      `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`;
    return {
      api: url(this.api.addr),
      http: url(this.http.addr),
      ...(this.https && { https: url(this.https.addr).replace(/^http:/, "https:") }),
      ...(this.metrics && { metrics: `${url(this.metrics.addr)}/metrics` }),
    };
  }

  async shutdown(): Promise<void> {
    await this.metrics?.shutdown();
    await this.https?.shutdown();
    await this.http.shutdown();
    await this.api.shutdown();
  }
}
