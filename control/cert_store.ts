/**
 * Certificates as the state machine keeps them: for each domain, the one the
 * ACME CA issued (PEM chain and key, and its expiry) or the last issuance's
 * error; the HTTP-01 answers a challenge under way expects on any node; and
 * the ACME account key of each directory. Everything is in the replicated
 * state, so every node serves the same certificates, a restart re-issues
 * nothing, and a challenge is answered wherever the CA's request lands.
 */

import type { StatementSync } from "node:sqlite";

export const CERTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS certificates (
  domain TEXT PRIMARY KEY, cert TEXT, key TEXT, not_before INTEGER, not_after INTEGER, issued_at INTEGER,
  error TEXT, failed_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS acme_challenges (token TEXT PRIMARY KEY, answer TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS acme_accounts (directory TEXT PRIMARY KEY, key TEXT NOT NULL, url TEXT, at INTEGER NOT NULL);
`;

type Sql = (text: string) => StatementSync;

/** The commands that change them (proposed by the leader, which issues). */
export type CertCommand =
  /** A certificate issued (or renewed) for `domain`: the chain and its key in PEM, and its validity. */
  | {
    type: "cert-issued";
    domain: string;
    cert: string;
    key: string;
    notBefore: number;
    notAfter: number;
    at: number;
  }
  /** An issuance failed; `attempts` counts failures in a row (the last certificate, if any, is kept). */
  | { type: "cert-failed"; domain: string; error: string; attempts: number; at: number }
  /** A domain that no service names any more: its certificate is forgotten. */
  | { type: "cert-removed"; domain: string }
  /** An HTTP-01 answer to give for `token` (absent `answer`: the challenge is over). */
  | { type: "acme-challenge"; token: string; answer?: string; at: number }
  /** The account key used with an ACME directory, and the account's URL once the CA made it. */
  | { type: "acme-account"; directory: string; key: string; url?: string; at: number };

export interface CertRecord {
  domain: string;
  cert?: string;
  key?: string;
  notBefore?: number;
  notAfter?: number;
  issuedAt?: number;
  error?: string;
  failedAt?: number;
  attempts: number;
}

/** The rows as a snapshot carries them. */
export interface CertRows {
  certificates: {
    domain: string;
    cert: string | null;
    key: string | null;
    not_before: number | null;
    not_after: number | null;
    issued_at: number | null;
    error: string | null;
    failed_at: number | null;
    attempts: number;
  }[];
  challenges: { token: string; answer: string; at: number }[];
  accounts?: { directory: string; key: string; url: string | null; at: number }[];
}

/** Applies one certificate command. */
export function applyCert(sql: Sql, c: CertCommand): void {
  switch (c.type) {
    case "cert-issued":
      sql(
        `INSERT INTO certificates (domain, cert, key, not_before, not_after, issued_at, error, failed_at, attempts)
         VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0) ON CONFLICT (domain) DO UPDATE SET cert = excluded.cert,
         key = excluded.key, not_before = excluded.not_before, not_after = excluded.not_after,
         issued_at = excluded.issued_at, error = NULL, failed_at = NULL, attempts = 0`,
      ).run(c.domain, c.cert, c.key, c.notBefore, c.notAfter, c.at);
      return;
    case "cert-failed":
      sql(
        `INSERT INTO certificates (domain, error, failed_at, attempts) VALUES (?, ?, ?, ?) ON CONFLICT (domain)
         DO UPDATE SET error = excluded.error, failed_at = excluded.failed_at, attempts = excluded.attempts`,
      ).run(c.domain, c.error, c.at, c.attempts);
      return;
    case "cert-removed":
      sql("DELETE FROM certificates WHERE domain = ?").run(c.domain);
      return;
    case "acme-challenge":
      if (c.answer === undefined) sql("DELETE FROM acme_challenges WHERE token = ?").run(c.token);
      else {sql("INSERT OR REPLACE INTO acme_challenges (token, answer, at) VALUES (?, ?, ?)").run(
          c.token,
          c.answer,
          c.at,
        );}
      return;
    case "acme-account":
      sql("INSERT OR REPLACE INTO acme_accounts (directory, key, url, at) VALUES (?, ?, ?, ?)").run(
        c.directory,
        c.key,
        c.url ?? null,
        c.at,
      );
      return;
  }
}

/** Every domain's certificate or error. */
export function readCerts(sql: Sql): CertRecord[] {
  return dumpCerts(sql, false).certificates.map((r) => ({
    domain: r.domain,
    ...(r.cert !== null && { cert: r.cert }),
    ...(r.key !== null && { key: r.key }),
    ...(r.not_before !== null && { notBefore: r.not_before }),
    ...(r.not_after !== null && { notAfter: r.not_after }),
    ...(r.issued_at !== null && { issuedAt: r.issued_at }),
    ...(r.error !== null && { error: r.error }),
    ...(r.failed_at !== null && { failedAt: r.failed_at }),
    attempts: r.attempts,
  }));
}

/** The answer a challenge under way expects for `token`. */
export function challengeAnswer(sql: Sql, token: string): string | undefined {
  return (sql("SELECT answer FROM acme_challenges WHERE token = ?").get(token) as { answer: string } | undefined)
    ?.answer;
}

/** The account kept for `directory`: its key, and its URL once the CA made it. */
export function accountOf(sql: Sql, directory: string): { key: string; url?: string } | undefined {
  const row = sql("SELECT key, url FROM acme_accounts WHERE directory = ?").get(directory) as
    | { key: string; url: string | null }
    | undefined;
  return row && { key: row.key, ...(row.url !== null && { url: row.url }) };
}

/** The tables for a snapshot; `accounts` only for a server's (a worker serves certificates, it issues none). */
export function dumpCerts(sql: Sql, accounts: boolean): CertRows {
  return {
    certificates: sql(
      `SELECT domain, cert, key, not_before, not_after, issued_at, error, failed_at, attempts
       FROM certificates ORDER BY domain`,
    ).all() as CertRows["certificates"],
    challenges: sql("SELECT token, answer, at FROM acme_challenges ORDER BY token").all() as CertRows["challenges"],
    ...(accounts && {
      accounts: sql("SELECT directory, key, url, at FROM acme_accounts ORDER BY directory")
        .all() as CertRows["accounts"],
    }),
  };
}

/** Replaces the tables with a snapshot's. */
export function loadCerts(sql: Sql, rows: CertRows | undefined): void {
  sql("DELETE FROM certificates").run();
  sql("DELETE FROM acme_challenges").run();
  sql("DELETE FROM acme_accounts").run();
  if (!rows) return;
  const cert = sql(
    `INSERT INTO certificates (domain, cert, key, not_before, not_after, issued_at, error, failed_at, attempts)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of rows.certificates) {
    cert.run(r.domain, r.cert, r.key, r.not_before, r.not_after, r.issued_at, r.error, r.failed_at, r.attempts);
  }
  const challenge = sql("INSERT INTO acme_challenges (token, answer, at) VALUES (?, ?, ?)");
  for (const c of rows.challenges) challenge.run(c.token, c.answer, c.at);
  const account = sql("INSERT INTO acme_accounts (directory, key, url, at) VALUES (?, ?, ?, ?)");
  for (const a of rows.accounts ?? []) account.run(a.directory, a.key, a.url ?? null, a.at);
}
