/**
 * The HTTPS listener: one port, many domains, each with its own certificate
 * chosen by the name the client asks for (SNI), HTTP/2 and HTTP/1.1 by ALPN.
 *
 * `Deno.serve` takes one certificate; the listener under it accepts a
 * resolver from server name to certificate (the one Deno's `node:tls` uses
 * for `SNICallback`), read from the options object the serve call builds. It
 * is handed over for that one synchronous call and taken away at once; the
 * HTTPS tests fail loudly should a Deno upgrade stop reading it.
 *
 * The listener keeps what the resolver answered for each name, for good: a
 * new or renewed certificate, or a name asked for before it had one, needs a
 * new listener. `reload` starts one on the same port (SO_REUSEPORT) and lets
 * the old one finish what it serves; names asked for in vain are counted, and
 * too many of them (a client making names up) reload it too, so that what it
 * keeps stays bounded.
 */

/** A certificate chain and its key, in PEM. */
export interface CertPair {
  cert: string;
  key: string;
}

/** The certificate to present for a server name, or undefined (the handshake fails: no such site here). */
export type CertLookup = (serverName: string) => CertPair | undefined;

const SNI_RESOLVER = Symbol.for("unstableSniResolver");
/** Unknown names a listener answers before it is replaced by a fresh one. */
const MAX_MISSES = 10_000;

export interface TlsServeOptions {
  hostname: string;
  port: number;
  lookup: CertLookup;
}

export class TlsServer {
  readonly #opts: TlsServeOptions;
  readonly #handler: Deno.ServeHandler<Deno.NetAddr>;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #misses = 0;

  /** Serves HTTPS on `hostname:port`, with the certificate `lookup` gives for each name. */
  constructor(opts: TlsServeOptions, handler: Deno.ServeHandler<Deno.NetAddr>) {
    this.#opts = opts;
    this.#handler = handler;
    if (opts.port !== 0) {
      // Listening with SO_REUSEPORT would share a port another process holds: make sure none does.
      Deno.listen({ hostname: opts.hostname, port: opts.port }).close();
    }
    this.#server = this.#listen(opts.port);
  }

  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** A fresh listener on the same port, so that certificates changed since are presented; the old one drains. */
  reload(): void {
    const old = this.#server;
    this.#server = this.#listen(old.addr.port);
    this.#misses = 0;
    old.shutdown().catch(() => {});
  }

  shutdown(): Promise<void> {
    return this.#server.shutdown();
  }

  #listen(port: number): Deno.HttpServer<Deno.NetAddr> {
    const resolve = (name: string): CertPair => {
      const pair = this.#opts.lookup(name.toLowerCase());
      if (pair) return pair;
      if (++this.#misses === MAX_MISSES) queueMicrotask(() => this.reload());
      throw new Error(`no certificate for ${JSON.stringify(name.slice(0, 255))}`);
    };
    // Deno.serve wants a certificate before it looks at the resolver: a placeholder it never presents.
    const proto = Object.prototype as Record<symbol, unknown>;
    proto[SNI_RESOLVER] = resolve;
    try {
      return Deno.serve({
        hostname: this.#opts.hostname,
        port,
        reusePort: true,
        cert: PLACEHOLDER.cert,
        key: PLACEHOLDER.key,
        onListen: () => {},
      }, this.#handler);
    } finally {
      delete proto[SNI_RESOLVER];
    }
  }
}

/** A self-signed P-256 certificate for `invalid.` (RFC 6761), presented to no one: the resolver answers first. */
const PLACEHOLDER: CertPair = {
  cert: `-----BEGIN CERTIFICATE-----
MIIBejCCASGgAwIBAgIUF/hDDMutSuwKaucltjmDZOYjp88wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHaW52YWxpZDAgFw0yNjEyMDcwNjIxMTBaGA8yMTI2MTExMzA2
MjExMFowEjEQMA4GA1UEAwwHaW52YWxpZDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABEC3dIaUmOBi8kYYLSdtcowFjBSaa6dIyMUciVWdVh3ngDnkqiJWPJcTJ4aX
nrfnewrKZxWHB43PtIRY86X9W+yjUzBRMB0GA1UdDgQWBBTHEW+W8dOr1ESgaBvj
Ld7UnD1SKzAfBgNVHSMEGDAWgBTHEW+W8dOr1ESgaBvjLd7UnD1SKzAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGPvTCN2p0E8h4ED5/M3tbthka0P
bGUf2/eAyj+YRwZiAiBO4HybDDwzjS+uht40L85MUIyb1ubOmtmzK3vxzm6T1A==
-----END CERTIFICATE-----
`,
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJwk9LoD783CtTcFy
mFLwgt2Ua2dTrHAxSZY5DeTPksOhRANCAARAt3SGlJjgYvJGGC0nbXKMBYwUmmun
SMjFHIlVnVYd54A55KoiVjyXEyeGl56353sKymcVhweNz7SEWPOl/Vvs
-----END PRIVATE KEY-----
`,
};
