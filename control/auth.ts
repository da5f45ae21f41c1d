/** The cluster token: made once per data dir, required on every API call. */

import { timingSafeEqual } from "node:crypto";

/** Reads `<home>/cluster.token`, creating it (mode 0600) on first start. */
export async function loadOrCreateToken(home: string): Promise<string> {
  const path = `${home}/cluster.token`;
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token) return token;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  // Hex: safe in headers, shells and flags (a base64url token can start with "-").
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeTextFile(path, `${token}\n`, { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return token;
}

/** Compares a presented token with the real one in constant time. */
export async function tokenMatches(presented: string, token: string): Promise<boolean> {
  const digest = async (s: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  // Hashing first gives equal lengths, so the comparison leaks nothing about the token's length either.
  return timingSafeEqual(await digest(presented), await digest(token));
}

/** This node's id: made once per data dir (`<home>/node.id`), labels what the node creates. */
export async function loadOrCreateNodeId(home: string): Promise<string> {
  const path = `${home}/node.id`;
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (id) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = crypto.randomUUID();
  await Deno.writeTextFile(path, `${id}\n`);
  return id;
}
