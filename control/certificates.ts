/**
 * HTTPS for the services' domains. `NodeCertificates` is every node's view
 * (the certificate to present for a name, the answer to an ACME challenge,
 * whether plain HTTP redirects), read from the applied state. `CertIssuer`
 * runs on the leader: it gets a certificate from the ACME CA for each domain
 * that needs one, renews it ahead of expiry (30 days, or a third of a short
 * lifetime), and records what it got, or the CA's error, through the log.
 */

import type { ServiceSpec } from "../config/mod.ts";
import { AcmeIssuer, type AcmeOptions, type IssuedCert } from "../proxy/acme.ts";
import type { CertPair } from "../proxy/tls.ts";
import { secretsStamp } from "./secret_store.ts";
import { retryDelay } from "../triggers/backoff.ts";
import { accountOf, type CertRecord, challengeAnswer, readCerts } from "./cert_store.ts";
import type { Change } from "./machine.ts";
import type { CommandLog } from "./plane_options.ts";
import type { Store } from "./store.ts";

/** Renewal starts this long before expiry (or at two thirds of a shorter certificate's life). */
export const RENEW_BEFORE_MS = 30 * 86_400_000;
/** Failed issuances back off from a minute to an hour (CAs limit failed validations per hour). */
const FAILURE_BACKOFF = { maxAttempts: Infinity, baseMs: 60_000, maxMs: 3_600_000 };

/** When a certificate valid from `notBefore` to `notAfter` is due for renewal. */
export function renewAt(notBefore: number, notAfter: number): number {
  return notAfter - Math.min(RENEW_BEFORE_MS, (notAfter - notBefore) / 3);
}

/** How a domain is served over HTTPS, as `orca status` shows it. */
export interface DomainTls {
  domain: string;
  service: string;
  /** `acme`: from the CA; `own`: the service's files; `off`: HTTP only. */
  source: "acme" | "own" | "off";
  state: "valid" | "pending" | "failed" | "expired" | "off";
  notAfter?: number;
  error?: string;
  attempts?: number;
  /** When the issuer tries again after a failure. */
  retryAt?: number;
}

/** The domains of `services` and how each wants HTTPS. */
function domainsOf(services: ServiceSpec[]): Map<string, ServiceSpec> {
  const out = new Map<string, ServiceSpec>();
  for (const s of services) if (s.domain) out.set(s.domain, s);
  return out;
}

/** Every node's view of the certificates: rebuilt after each change that may touch them. */
export class NodeCertificates {
  readonly #store: Store;
  readonly #httpsPort?: number;
  #pairs = new Map<string, CertPair>();
  #redirects = new Set<string>();
  readonly #resolve?: (spec: ServiceSpec) => Promise<ServiceSpec>;
  /** Own pairs that come from secrets, opened, by domain and the secrets' stamp (opened once per value). */
  #opened = new Map<string, CertPair | "opening" | "failed">();
  /** Called when a certificate was added, renewed or dropped (the HTTPS listener presents the new set). */
  onChange?: () => void;

  /**
   * `httpsPort`: this node's HTTPS port (none: it serves HTTP only and never redirects). `resolve` opens the secrets a
   * service's own `tls` files may come from.
   */
  constructor(
    store: Store,
    onApplied: CommandLog["onApplied"],
    httpsPort?: number,
    resolve?: (spec: ServiceSpec) => Promise<ServiceSpec>,
  ) {
    this.#store = store;
    if (httpsPort !== undefined) this.#httpsPort = httpsPort;
    this.#resolve = resolve;
    this.refresh();
    const kinds: Change[] = ["deploy", "rollout-end", "cert-issued", "cert-removed", "snapshot", "secret-set"];
    onApplied((changed) => {
      if (kinds.some((k) => changed.has(k))) this.refresh();
    });
  }

  refresh(): void {
    const now = Date.now();
    const issued = new Map(readCerts((t) => this.#store.sql(t)).map((c) => [c.domain, c]));
    const pairs = new Map<string, CertPair>();
    const redirects = new Set<string>();
    for (const [domain, spec] of domainsOf(this.#store.services().map((s) => s.spec))) {
      if (spec.tls === "off") continue;
      const own = this.#own(domain, spec);
      const acme = issued.get(domain);
      const pair = own ?? (acme?.cert && acme.key && (acme.notAfter ?? 0) > now ? acme as CertPair : undefined);
      if (!pair) continue;
      pairs.set(domain, { cert: pair.cert, key: pair.key });
      if (spec.https_redirect !== false) redirects.add(domain);
    }
    const before = this.#pairs;
    this.#pairs = pairs;
    this.#redirects = redirects;
    const same = before.size === pairs.size && [...pairs].every(([d, p]) => before.get(d)?.cert === p.cert);
    if (!same) this.onChange?.();
  }

  /** A service's own pair: as the spec has it, or opened from the secrets it names (later: a refresh follows). */
  #own(domain: string, spec: ServiceSpec): CertPair | undefined {
    const tls = spec.tls;
    if (tls === undefined || tls === "off" || !tls.cert_pem || !tls.key_pem) return undefined;
    const stamp = secretsStamp(spec, (t) => this.#store.sql(t));
    if (stamp === undefined) return { cert: tls.cert_pem, key: tls.key_pem };
    const key = `${domain}\u0000${stamp}`;
    const opened = this.#opened.get(key);
    if (typeof opened === "object") return opened;
    if (opened === undefined && this.#resolve) {
      this.#opened.set(key, "opening");
      this.#resolve(spec).then((r) => {
        const t = r.tls as { cert_pem: string; key_pem: string };
        for (const k of this.#opened.keys()) if (k.startsWith(`${domain}\u0000`) && k !== key) this.#opened.delete(k);
        this.#opened.set(key, { cert: t.cert_pem, key: t.key_pem });
        this.refresh();
      }, () => this.#opened.set(key, "failed"));
    }
    return undefined;
  }

  /**
   * The certificate for a server name (a `*.` domain covers one label below it). A client that names none (it
   * asked for an IP address) gets the first domain's, as nginx gives its default server's.
   */
  lookup(name: string): CertPair | undefined {
    if (name === "") return this.#pairs.values().next().value;
    const exact = this.#pairs.get(name);
    if (exact) return exact;
    const dot = name.indexOf(".");
    return dot > 0 ? this.#pairs.get(`*${name.slice(dot)}`) : undefined;
  }

  /** The answer to an ACME HTTP-01 challenge under way. */
  challenge(token: string): string | undefined {
    return challengeAnswer((t) => this.#store.sql(t), token);
  }

  /** The HTTPS port a plain request for `hostname` is sent to, when its domain serves HTTPS and redirects. */
  redirectPort(hostname: string): number | undefined {
    if (this.#httpsPort === undefined || this.#redirects.size === 0) return undefined;
    if (this.#redirects.has(hostname)) return this.#httpsPort;
    const dot = hostname.indexOf(".");
    return dot > 0 && this.#redirects.has(`*${hostname.slice(dot)}`) ? this.#httpsPort : undefined;
  }
}

/** How every domain of `services` is served over HTTPS, with the state of its certificate. */
export function domainStates(services: ServiceSpec[], certs: CertRecord[], now: number): DomainTls[] {
  const issued = new Map(certs.map((c) => [c.domain, c]));
  return [...domainsOf(services)].map(([domain, spec]) => {
    const service = `${spec.project}/${spec.name}`;
    if (spec.tls === "off") return { domain, service, source: "off", state: "off" };
    if (spec.tls?.cert_pem) return { domain, service, source: "own", state: "valid" };
    const c = issued.get(domain);
    const out: DomainTls = { domain, service, source: "acme", state: "pending" };
    if (c?.notAfter !== undefined) {
      out.notAfter = c.notAfter;
      out.state = c.notAfter > now ? "valid" : "expired";
    }
    if (c?.error !== undefined) {
      if (out.state === "pending") out.state = "failed";
      out.error = c.error;
      out.attempts = c.attempts;
      out.retryAt = (c.failedAt ?? now) + retryDelay(c.attempts, FAILURE_BACKOFF);
    }
    return out;
  });
}

export interface IssuerOptions {
  store: Store;
  commands: Pick<CommandLog, "propose">;
  acme: AcmeOptions;
  leads(): boolean;
  /** Resolves once every node can answer what was just recorded (workers get the state a moment later). */
  spread?(): Promise<void>;
  log(line: string): void;
  /** How often due certificates are looked for (default 60 s; a deploy wakes it at once). */
  checkMs?: number;
  now?: () => number;
}

/** The leader's issuer: one issuance at a time, each recorded through the log. */
export class CertIssuer {
  readonly #opts: IssuerOptions;
  readonly #now: () => number;
  #timer?: ReturnType<typeof setTimeout>;
  #running = false;
  #again = false;
  #closed = false;

  constructor(opts: IssuerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  start(): void {
    this.wake();
  }

  /** Looks for due certificates now (after a deploy, on becoming leader). */
  wake(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = true;
    this.#cycle().catch((err) => this.#opts.log(`certificates: ${(err as Error).message ?? err}`)).finally(() => {
      this.#running = false;
      if (this.#closed) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
        return;
      }
      this.#timer = setTimeout(() => this.wake(), this.#opts.checkMs ?? 60_000);
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** The domains due now: no certificate yet, one due for renewal, or a failure whose backoff ran out. */
  due(): string[] {
    const sql = (t: string) => this.#opts.store.sql(t);
    const issued = new Map(readCerts(sql).map((c) => [c.domain, c]));
    const now = this.#now();
    const out: string[] = [];
    for (const [domain, spec] of domainsOf(this.#opts.store.services().map((s) => s.spec))) {
      if (spec.tls !== undefined || domain.startsWith("*.")) continue;
      const c = issued.get(domain);
      if (c?.error !== undefined && now < (c.failedAt ?? 0) + retryDelay(c.attempts, FAILURE_BACKOFF)) continue;
      if (c?.notAfter !== undefined && c.notBefore !== undefined && now < renewAt(c.notBefore, c.notAfter)) continue;
      out.push(domain);
    }
    return out;
  }

  async #cycle(): Promise<void> {
    if (!this.#opts.leads()) return;
    for (const domain of this.due()) {
      if (this.#closed || !this.#opts.leads()) return;
      await this.#issue(domain);
    }
  }

  async #issue(domain: string): Promise<void> {
    const { commands, log } = this.#opts;
    const renewing = readCerts((t) => this.#opts.store.sql(t)).find((c) => c.domain === domain);
    log(`certificates: ${renewing?.cert ? "renewing" : "requesting"} a certificate for ${domain}`);
    let cert: IssuedCert;
    const directory = this.#opts.acme.directory;
    const account = await this.#account();
    const issuer = new AcmeIssuer(this.#opts.acme, account.key, account.url);
    try {
      cert = await issuer.issue(domain, {
        publish: async (token, answer) => {
          await commands.propose({ type: "acme-challenge", token, answer, at: this.#now() });
          await this.#opts.spread?.();
        },
        withdraw: (token) => commands.propose({ type: "acme-challenge", token, at: this.#now() }).then(),
      });
    } catch (err) {
      const error = String((err as Error).message ?? err).slice(0, 2000);
      const attempts = (renewing?.attempts ?? 0) + 1;
      log(`certificates: ${domain}: ${error} (attempt ${attempts})`);
      await commands.propose({ type: "cert-failed", domain, error, attempts, at: this.#now() });
      return;
    } finally {
      // The account the CA made is kept: registering it again is an update some CAs refuse.
      const url = issuer.accountUrl;
      if (url !== undefined && url !== account.url) {
        await commands.propose({ type: "acme-account", directory, key: account.key, url, at: this.#now() });
      }
    }
    await commands.propose({ type: "cert-issued", domain, ...cert, at: this.#now() });
    log(`certificates: ${domain} valid until ${new Date(cert.notAfter).toISOString()}`);
  }

  /** The account for the directory: the one in the state, or a new key recorded there first. */
  async #account(): Promise<{ key: string; url?: string }> {
    const directory = this.#opts.acme.directory;
    const kept = accountOf((t) => this.#opts.store.sql(t), directory);
    if (kept) return kept;
    const key = await AcmeIssuer.newKey();
    await this.#opts.commands.propose({ type: "acme-account", directory, key, at: this.#now() });
    return { key };
  }
}
