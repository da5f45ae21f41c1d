/**
 * Secrets: `orca secrets set|ls|rm`, and `${secrets.NAME}` put into the
 * services that reference them. A value is sealed on the server that
 * receives it (secret_box.ts) and committed to the log sealed; every node
 * opens it only to start a workload (or serve a certificate) that needs it.
 * A deploy that references a secret nobody set is refused, naming the
 * service, the field and the secret; a secret still referenced cannot be
 * removed. Values never go into errors, logs, events or the deploy history.
 */

import {
  checkPair,
  isSecretRef,
  resolveService,
  SECRET_NAME,
  SECRET_NAME_HINT,
  type SecretRef,
  serviceRefs,
  type ServiceSpec,
} from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import type { ControlCommand } from "./machine.ts";
import type { SecretBox } from "./secret_box.ts";
import { listSecrets, sealedOf } from "./secret_store.ts";
import type { Store } from "./store.ts";

/** The largest secret value (a PEM chain or key fits several times). */
export const MAX_SECRET_BYTES = 64 * 1024;

export class Secrets {
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #propose: (command: ControlCommand) => Promise<unknown>;
  readonly #now: () => number;

  constructor(opts: {
    store: Store;
    box: SecretBox;
    commands: { propose(command: ControlCommand): Promise<unknown> };
    now?: () => number;
  }) {
    this.#store = opts.store;
    this.#box = opts.box;
    this.#propose = (command) => opts.commands.propose(command);
    this.#now = opts.now ?? Date.now;
  }

  /** The cluster's key, for a server that joins (base64). */
  exportedKey(): string {
    return this.#box.exported();
  }

  /** Names and when each was last set, and the services referencing each. */
  list(): { name: string; updatedAt: number; usedBy: string[] }[] {
    const users = this.#users();
    return listSecrets(this.#sql).map((s) => ({ ...s, usedBy: users.get(s.name) ?? [] }));
  }

  /** Seals `value` and commits it; services that reference it start anew with it (on the nodes that run them). */
  async set(name: string, value: Uint8Array): Promise<{ name: string; created: boolean; usedBy: string[] }> {
    checkName(name);
    if (value.length > MAX_SECRET_BYTES) {
      throw new OrcaError("too_large", `secret ${name} is ${value.length} bytes; at most ${MAX_SECRET_BYTES}`);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(value);
    } catch {
      throw new OrcaError("invalid", `secret ${name} is not UTF-8 text`, {
        hint: "store binary data base64-encoded and decode it in the service",
      });
    }
    if (text.includes("\0")) {
      throw new OrcaError("invalid", `secret ${name} holds a NUL byte, which no environment value can`);
    }
    const created = sealedOf(this.#sql, name) === undefined;
    const sealed = await this.#box.seal(name, value);
    await this.#propose({ type: "secret-set", name, sealed, at: this.#now() });
    return { name, created, usedBy: this.#users().get(name) ?? [] };
  }

  /** Removes secret `name`; refused while a deployed service references it. */
  async remove(name: string): Promise<void> {
    checkName(name);
    if (sealedOf(this.#sql, name) === undefined) {
      throw new OrcaError("not_found", `no secret ${name}`, { hint: "orca secrets ls lists them" });
    }
    const users = this.#users().get(name);
    if (users) {
      throw new OrcaError("conflict", `secret ${name} is used by ${users.join(", ")}`, {
        hint: "deploy those services without it first; nothing was removed",
      });
    }
    await this.#propose({ type: "secret-removed", name });
  }

  /**
   * Checks a deploy's services against the secrets set: every reference names one, and a `tls` pair that comes from
   * secrets is a certificate and key for the service's domain. Throws naming the service, field and secret.
   */
  async check(specs: ServiceSpec[]): Promise<void> {
    for (const spec of specs) {
      for (const ref of serviceRefs(spec)) {
        if (sealedOf(this.#sql, ref.name) === undefined) {
          throw notSet(spec, ref, ", then deploy again; nothing was deployed");
        }
      }
      const tls = spec.tls;
      if (tls === undefined || tls === "off" || !(isSecretRef(tls.cert) || isSecretRef(tls.key))) continue;
      const resolved = (await this.resolve(spec)).tls as { cert_pem: string; key_pem: string };
      const checked = checkPair(resolved.cert_pem, resolved.key_pem, spec.domain!);
      if ("error" in checked) {
        const field = checked.field === "cert" ? tls.cert : tls.key;
        throw new OrcaError(
          "config",
          `service ${spec.project}/${spec.name}: tls.${checked.field} (${field}) ${checked.error}`,
          {
            hint: "set the secret to the PEM text of the certificate chain or its key",
          },
        );
      }
    }
  }

  /** `spec` with the values of the secrets it references put in (only to start its workload, or serve its TLS). */
  resolve(spec: ServiceSpec): Promise<ServiceSpec> {
    return openSecrets(this.#store, this.#box, spec);
  }

  /** Deployed services by the secrets they reference. */
  #users(): Map<string, string[]> {
    const users = new Map<string, string[]>();
    for (const { spec } of this.#store.services()) {
      const key = `${spec.project}/${spec.name}`;
      for (const name of new Set(serviceRefs(spec).map((r) => r.name))) {
        users.set(name, [...users.get(name) ?? [], key]);
      }
    }
    return users;
  }

  readonly #sql = (text: string) => this.#store.sql(text);
}

/** `spec` with the values of the secrets it references, opened with `box`, put in; throws naming a missing one. */
export async function openSecrets(store: Store, box: SecretBox | undefined, spec: ServiceSpec): Promise<ServiceSpec> {
  const refs = serviceRefs(spec);
  if (refs.length === 0) return spec;
  const values = new Map<string, string>();
  for (const ref of refs) {
    if (values.has(ref.name)) continue;
    const sealed = sealedOf((text) => store.sql(text), ref.name);
    if (sealed === undefined) throw notSet(spec, ref);
    if (!box) {
      const where = `service ${spec.project}/${spec.name}: ${ref.field} uses secret ${ref.name}`;
      throw new OrcaError("unavailable", `${where}, and this node has no secrets key yet`, {
        hint: "a worker gets the cluster's key from the leader when it connects",
      });
    }
    values.set(ref.name, await box.open(ref.name, sealed));
  }
  return resolveService(spec, (name) => values.get(name)!);
}

/** The error for a reference to a secret nobody set, naming the service, the field and the secret. */
function notSet(spec: ServiceSpec, ref: SecretRef, then = ""): OrcaError {
  return new OrcaError(
    "config",
    `service ${spec.project}/${spec.name}: ${ref.field} uses secret ${ref.name}, which is not set`,
    { hint: `orca secrets set ${ref.name}${then}` },
  );
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new OrcaError("invalid", `${JSON.stringify(name.slice(0, 80))} is not a secret name`, {
      hint: SECRET_NAME_HINT,
    });
  }
}
