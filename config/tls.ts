/**
 * How a service's `domain` is served over HTTPS (`tls` in service.toml):
 * absent, a certificate comes from the ACME CA the servers were started with;
 * `"off"`, the domain is served on HTTP only; `{ cert, key }`, the service's
 * own PEM files (relative to service.toml), read by `orca deploy` and carried
 * in the spec so that every node can serve them; either may be a whole
 * `${secrets.NAME}` instead of a path (the PEM text is the secret's value,
 * put in on each node, and checked by the leader at deploy). `https_redirect = false`
 * keeps plain HTTP answering once a certificate exists (by default it
 * redirects to HTTPS).
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import type { FieldAt } from "./files.ts";
import { fieldError, quote, type TableReader } from "./reader.ts";
import { isSecretRef } from "./secrets.ts";
import type { ServiceSpec, TlsFiles } from "./types.ts";

/** The largest PEM file a service may name (a chain of a few certificates, or a key). */
export const MAX_PEM_BYTES = 64 * 1024;

/** `tls` of a `[[service]]` block (with its PEM text when the API carries it). */
export function readTls(r: TableReader, domain: string | undefined, api: boolean): ServiceSpec["tls"] {
  const raw = r.raw("tls");
  if (raw === undefined) return undefined;
  if (domain === undefined) throw r.error(r.path("tls"), "needs a `domain`", 'set domain = "app.example.com"');
  if (typeof raw === "string") {
    if (raw !== "off") {
      throw r.error(r.path("tls"), `has an invalid value ${quote(raw)}`, 'write tls = "off" or tls = { cert, key }');
    }
    return "off";
  }
  const t = r.table("tls")!;
  const files: TlsFiles = {
    cert: t.string("cert", { required: true })!,
    key: t.string("key", { required: true })!,
  };
  for (const which of ["cert", "key"] as const) {
    if (files[which].includes("${secrets.") && !isSecretRef(files[which])) {
      throw r.error([...r.path("tls"), which], "is a path or a whole ${secrets.NAME}, not a mix of both");
    }
  }
  if (api) {
    files.cert_pem = t.string("cert_pem", { required: true })!;
    files.key_pem = t.string("key_pem", { required: true })!;
    for (const which of ["cert", "key"] as const) {
      const pem = files[`${which}_pem`]!;
      if (isSecretRef(files[which]) !== isSecretRef(pem) || (isSecretRef(pem) && pem !== files[which])) {
        throw r.error([...r.path("tls"), `${which}_pem`], `must be the ${which} file's text, or its secret reference`);
      }
    }
  }
  t.done();
  // A secret's PEM is checked by the leader at deploy, where the value is known.
  if (api && !isSecretRef(files.cert) && !isSecretRef(files.key)) {
    const checked = checkPair(files.cert_pem!, files.key_pem!, domain);
    if ("error" in checked) throw r.error([...r.path("tls"), checked.field], checked.error);
  }
  return files;
}

/**
 * Checks PEM text: a certificate that parses, a key that parses and belongs to it, and a certificate that names
 * `domain`. Gives its expiry, or the field at fault and why.
 */
export function checkPair(
  certPem: string,
  keyPem: string,
  domain: string,
): { notAfter: number } | { field: "cert" | "key"; error: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    return { field: "cert", error: `is not a PEM certificate (${(err as Error).message})` };
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    return { field: "key", error: `is not a PEM private key (${(err as Error).message})` };
  }
  if (!cert.checkPrivateKey(key)) return { field: "key", error: "does not belong to the certificate `cert` names" };
  const probe = domain.startsWith("*.") ? `x${domain.slice(1)}` : domain;
  if (cert.checkHost(probe) === undefined) {
    const names = cert.subjectAltName ?? cert.subject;
    return { field: "cert", error: `does not cover the domain ${quote(domain)} (it names ${names})` };
  }
  return { notAfter: new Date(cert.validTo).getTime() };
}

/** Reads the PEM files `tls` names (relative to `dir`), and checks them against the service's domain. */
export async function readTlsFiles(dir: string, spec: ServiceSpec, at: FieldAt): Promise<void> {
  const tls = spec.tls;
  if (tls === undefined || tls === "off") return;
  const read = async (which: "cert" | "key") => {
    if (isSecretRef(tls[which])) return tls[which];
    const path = tls[which].startsWith("/") ? tls[which] : `${dir}/${tls[which]}`;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (err) {
      throw fieldError(at.source, [...at.path, which], `cannot be read: ${quote(path)} (${(err as Error).message})`);
    }
    if (!info.isFile) throw fieldError(at.source, [...at.path, which], `is not a regular file: ${quote(path)}`);
    if (info.size > MAX_PEM_BYTES) {
      throw fieldError(at.source, [...at.path, which], `is larger than ${MAX_PEM_BYTES} bytes: ${quote(path)}`);
    }
    return await Deno.readTextFile(path);
  };
  tls.cert_pem = await read("cert");
  tls.key_pem = await read("key");
  if (isSecretRef(tls.cert) || isSecretRef(tls.key)) return;
  const checked = checkPair(tls.cert_pem, tls.key_pem, spec.domain!);
  if ("error" in checked) throw fieldError(at.source, [...at.path, checked.field], checked.error);
}
