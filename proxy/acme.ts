/**
 * Certificates from an ACME CA (RFC 8555) by the HTTP-01 challenge, through
 * acme-client (npm). Its HTTP goes through `fetch`, so a private CA's root
 * (`--acme-ca-cert`) is trusted for the directory alone, not process-wide.
 * Where the challenge answers live is the caller's: a cluster keeps them in
 * its replicated state, so any node the CA reaches can answer.
 */

import acme from "acme-client";
import axios from "axios";

/** Let's Encrypt's production directory: the default. */
export const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";

export interface AcmeOptions {
  directory: string;
  /** The account's contact address (optional for most CAs). */
  email?: string;
  /** Extra CA certificates (PEM) to trust for the directory's HTTPS. */
  caCert?: string;
  /** The longest one issuance may take (default 3 min). */
  timeoutMs?: number;
}

/** A certificate chain and its private key, in PEM, and when it is valid. */
export interface IssuedCert {
  cert: string;
  key: string;
  notBefore: number;
  notAfter: number;
}

/** Where the answers to HTTP-01 challenges are published while the CA checks them. */
export interface ChallengeBoard {
  publish(token: string, answer: string): Promise<void>;
  withdraw(token: string): Promise<void>;
}

let configured: string | undefined;

/** acme-client's HTTP goes through fetch, with the extra CA when one is given (one configuration per process). */
function configureHttp(caCert: string | undefined): void {
  const key = caCert ?? "";
  if (configured === key) return;
  const http = acme.axios;
  const viaFetch = axios.getAdapter("fetch");
  // acme-client's retry step reads the response of a failed request; one that got none (a CA not reached) would
  // become a TypeError there: without its config the error is passed on as it is (the issuer retries later).
  http.defaults.adapter = async (config) => {
    try {
      return await viaFetch(config);
    } catch (err) {
      if (axios.isAxiosError(err) && !err.response) delete (err as { config?: unknown }).config;
      throw err;
    }
  };
  // A CA that does not answer fails the issuance in seconds (it is tried again later, with backoff).
  const settings = (http.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
  if (settings) Object.assign(settings, { retryMaxAttempts: 3, retryDefaultDelay: 2 });
  (http.defaults as { fetchOptions?: unknown }).fetchOptions = caCert
    ? { client: Deno.createHttpClient({ caCerts: [caCert] }) }
    : {};
  configured = key;
}

export class AcmeIssuer {
  readonly #opts: AcmeOptions;
  readonly #client: acme.Client;

  /**
   * `accountKey`: the account's private key in PEM (make one with `AcmeIssuer.newKey`, and keep it); `accountUrl`:
   * the account the CA made for it, once known (then it is not registered again).
   */
  constructor(opts: AcmeOptions, accountKey: string, accountUrl?: string) {
    this.#opts = opts;
    configureHttp(opts.caCert);
    this.#client = new acme.Client({
      directoryUrl: opts.directory,
      accountKey,
      ...(accountUrl !== undefined && { accountUrl }),
      backoffAttempts: 10,
      backoffMin: 1000,
      backoffMax: 10_000,
    });
  }

  /** The account's URL, once the CA made (or found) it. */
  get accountUrl(): string | undefined {
    try {
      return this.#client.getAccountUrl();
    } catch {
      return undefined;
    }
  }

  /** A new ECDSA P-256 private key, in PEM. */
  static async newKey(): Promise<string> {
    return (await acme.crypto.createPrivateEcdsaKey()).toString();
  }

  /** Issues a certificate for `domain`, publishing the challenge's answer on `board` while the CA checks it. */
  async issue(domain: string, board: ChallengeBoard): Promise<IssuedCert> {
    const key = await AcmeIssuer.newKey();
    const [, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, key);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeoutMs = this.#opts.timeoutMs ?? 180_000;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no certificate after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      const cert = await Promise.race([
        this.#client.auto({
          csr,
          ...(this.#opts.email !== undefined && { email: this.#opts.email }),
          termsOfServiceAgreed: true,
          challengePriority: ["http-01"],
          // The CA checks the answer from outside; a check from here would need the domain to resolve here too.
          skipChallengeVerification: true,
          challengeCreateFn: (_authz, challenge, answer) => board.publish(challenge.token, answer),
          challengeRemoveFn: (_authz, challenge) => board.withdraw(challenge.token),
        }),
        expired,
      ]);
      const info = acme.crypto.readCertificateInfo(cert);
      return { cert, key, notBefore: info.notBefore.getTime(), notAfter: info.notAfter.getTime() };
    } catch (err) {
      throw new Error(describe(err));
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error of the CA or of the way to it, in words: its message and those of its causes (fetch hides the socket's). */
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; code?: string; cause?: unknown } | undefined, i = 0; e && i < 4; i++) {
    const text = e.message?.trim() || e.code;
    if (text && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e.cause as typeof e;
  }
  return parts.join(": ") || String(err);
}
