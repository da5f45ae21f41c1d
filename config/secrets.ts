/**
 * Secret references in configuration: `${secrets.NAME}` inside a value of
 * service.toml (`env`, `command`, `tls` files) or cluster.toml (`setup_key`).
 * The files and the log keep the reference; the value is put in on the node
 * that runs the service, just before it starts. Any other `${...}` is left
 * as written (a container's own shell may expand it).
 */

import type { KeyPath } from "./locate.ts";
import type { TableReader } from "./reader.ts";
import type { ServiceSpec } from "./types.ts";

/** What a secret's name may be: what `${secrets.NAME}` can name. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const SECRET_NAME_HINT = "1-64 letters, digits, _ and -, starting with a letter or _";

const PREFIX = "${secrets.";

/** One reference: where it is (a field path such as `env.DB_PASSWORD`) and the secret it names. */
export interface SecretRef {
  field: string;
  name: string;
}

/** The secrets `value` names, in order; an error for a malformed reference (`${secrets.` without a name and `}`). */
export function refsIn(value: string): { names: string[] } | { error: string } {
  const names: string[] = [];
  let at = value.indexOf(PREFIX);
  while (at !== -1) {
    const end = value.indexOf("}", at + PREFIX.length);
    const name = end === -1 ? undefined : value.slice(at + PREFIX.length, end);
    if (name === undefined || !SECRET_NAME.test(name)) {
      const shown = value.slice(at, end === -1 ? at + 40 : end + 1);
      return { error: `has an invalid secret reference ${JSON.stringify(shown)} (a name is ${SECRET_NAME_HINT})` };
    }
    names.push(name);
    at = value.indexOf(PREFIX, end + 1);
  }
  return { names };
}

/** Throws the reader's error for the field at `path` when `value` has a malformed reference. */
export function checkRefs(r: TableReader, path: KeyPath, value: string): void {
  const refs = refsIn(value);
  if ("error" in refs) throw r.error(path, refs.error, "write ${secrets.NAME}; orca secrets ls lists the names");
}

/** `value` with every `${secrets.NAME}` replaced by `lookup(NAME)` (the caller checked the references). */
export function substitute(value: string, lookup: (name: string) => string): string {
  if (!value.includes(PREFIX)) return value;
  return value.replace(/\$\{secrets\.([A-Za-z_][A-Za-z0-9_-]{0,63})\}/g, (_, name: string) => lookup(name));
}

/** The values of a service that may hold references, by field path. */
function fieldsOf(spec: ServiceSpec): [string, string][] {
  const out: [string, string][] = Object.entries(spec.env).map(([k, v]) => [`env.${k}`, v]);
  spec.command?.forEach((arg, i) => out.push([`command[${i}]`, arg]));
  if (spec.tls !== undefined && spec.tls !== "off") {
    if (spec.tls.cert_pem !== undefined) out.push(["tls.cert", spec.tls.cert_pem]);
    if (spec.tls.key_pem !== undefined) out.push(["tls.key", spec.tls.key_pem]);
  }
  return out;
}

/** Every reference a service makes (checked well-formed when its file was read). */
export function serviceRefs(spec: ServiceSpec): SecretRef[] {
  return fieldsOf(spec).flatMap(([field, value]) => {
    const refs = refsIn(value);
    return "names" in refs ? refs.names.map((name) => ({ field, name })) : [];
  });
}

/** `spec` with its references replaced by the values `lookup` gives. */
export function resolveService(spec: ServiceSpec, lookup: (name: string) => string): ServiceSpec {
  if (serviceRefs(spec).length === 0) return spec;
  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, substitute(v, lookup)]));
  const resolved: ServiceSpec = { ...spec, env };
  if (spec.command) resolved.command = spec.command.map((arg) => substitute(arg, lookup));
  if (spec.tls !== undefined && spec.tls !== "off") {
    resolved.tls = {
      ...spec.tls,
      ...(spec.tls.cert_pem !== undefined && { cert_pem: substitute(spec.tls.cert_pem, lookup) }),
      ...(spec.tls.key_pem !== undefined && { key_pem: substitute(spec.tls.key_pem, lookup) }),
    };
  }
  return resolved;
}

/** Whether a `tls` file setting is a secret reference as a whole (its PEM text is the secret's value). */
export function isSecretRef(value: string): boolean {
  const refs = refsIn(value);
  return "names" in refs && refs.names.length === 1 && value === `${PREFIX}${refs.names[0]}}`;
}
