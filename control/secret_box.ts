/**
 * The cluster's secrets key and the sealing it does. The key is 32 random
 * bytes in `$ORCA_HOME/secrets.key` (mode 0600), made by the first server of
 * a cluster and handed to every node that joins (servers in the join's
 * answer, workers when they connect); it is never in the store, the log or a
 * snapshot. A secret is sealed with AES-256-GCM (WebCrypto) under it, with
 * its name as additional data, so a sealed value copied to another name does
 * not open. A sealed value names the key it was sealed with (the first bytes
 * of the key's SHA-256), so a node holding another key says so plainly.
 */

import { OrcaError } from "../errors.ts";
import { fromBase64, toBase64 } from "../runtime/mod.ts";

const FILE = "secrets.key";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SecretBox {
  readonly #key: CryptoKey;
  readonly #raw: Uint8Array;
  /** The key's id: 16 hex digits of its SHA-256 (not secret). */
  readonly id: string;

  private constructor(key: CryptoKey, raw: Uint8Array, id: string) {
    this.#key = key;
    this.#raw = raw;
    this.id = id;
  }

  /** The key in `home`, made (mode 0600) when there is none. */
  static async loadOrCreate(home: string): Promise<SecretBox> {
    const path = `${home}/${FILE}`;
    const kept = await readKey(path);
    if (kept) return await SecretBox.#of(kept, path);
    const raw = crypto.getRandomValues(new Uint8Array(32));
    await writeKey(path, raw);
    return await SecretBox.#of(raw, path);
  }

  /**
   * Keeps `given` (the cluster's key, base64, from the server a node joined) in `home`, replacing another one: the
   * cluster's key is the one its secrets were sealed with.
   */
  static async adopt(home: string, given: string): Promise<SecretBox> {
    const path = `${home}/${FILE}`;
    let raw: Uint8Array;
    try {
      raw = fromBase64(given);
    } catch {
      throw new OrcaError("invalid", "the secrets key the cluster sent is not base64");
    }
    if (raw.length !== 32) throw new OrcaError("invalid", "the secrets key the cluster sent is not 32 bytes");
    const kept = await readKey(path);
    if (!kept || toBase64(kept) !== toBase64(raw)) await writeKey(path, raw);
    return await SecretBox.#of(raw, path);
  }

  static async #of(raw: Uint8Array, path: string): Promise<SecretBox> {
    if (raw.length !== 32) {
      throw new OrcaError("config", `${path} does not hold a 32-byte key (base64)`, {
        hint:
          "copy secrets.key from a server of the cluster (same mode 0600), or remove it on a new cluster's first server",
      });
    }
    const key = await crypto.subtle.importKey("raw", raw.slice(), "AES-GCM", false, ["encrypt", "decrypt"]);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw.slice()));
    const id = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
    return new SecretBox(key, raw, id);
  }

  /** The key in base64, for a node that joins (over the cluster's authenticated connection only). */
  exported(): string {
    return toBase64(this.#raw);
  }

  /** `v1.<key id>.<iv>.<ciphertext>` (base64) of `value`, bound to `name`. */
  async seal(name: string, value: Uint8Array): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(name) },
      this.#key,
      value.slice(),
    );
    return `v1.${this.id}.${toBase64(iv)}.${toBase64(new Uint8Array(data))}`;
  }

  /** The value sealed for `name`; throws naming the secret when this key cannot open it. */
  async open(name: string, sealed: string): Promise<string> {
    const [v, id, iv, data] = sealed.split(".");
    if (v !== "v1" || !iv || !data) {
      throw new OrcaError("internal", `secret ${name} is not in a format this version reads`);
    }
    if (id !== this.id) {
      throw new OrcaError("config", `secret ${name} was sealed with key ${id}, and this node holds key ${this.id}`, {
        hint: "every node needs the cluster's secrets.key: copy it from the server that made it into $ORCA_HOME",
      });
    }
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: fromBase64(iv).slice(), additionalData: encoder.encode(name) },
        this.#key,
        fromBase64(data).slice(),
      );
      return decoder.decode(plain);
    } catch {
      throw new OrcaError("internal", `secret ${name} does not open with this node's key (damaged, or moved)`);
    }
  }
}

async function readKey(path: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    return fromBase64(text);
  } catch {
    throw new OrcaError("config", `${path} does not hold a base64 key`, {
      hint: "copy secrets.key from a server of the cluster",
    });
  }
}

async function writeKey(path: string, raw: Uint8Array): Promise<void> {
  await Deno.writeTextFile(path, `${toBase64(raw)}\n`, { mode: 0o600 });
  await Deno.chmod(path, 0o600);
}
