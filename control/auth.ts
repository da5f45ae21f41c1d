/** The cluster token: made once per data dir, required on every API call. */

import { timingSafeEqual } from "node:crypto";

/** Reads `<home>/cluster.token`, creating it (mode 0600) on first start. */
export function loadOrCreateToken(home: string): Promise<string> {
  // Hex: safe in headers, shells and flags (a base64url token can start with "-").
  const make = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
  return readOrCreate(`${home}/cluster.token`, make, 0o600);
}

/** This node's id: made once per data dir (`<home>/node.id`), labels what the node creates. */
export function loadOrCreateNodeId(home: string): Promise<string> {
  return readOrCreate(`${home}/node.id`, () => crypto.randomUUID(), 0o600);
}

/** The trimmed content of `path`, or a new value made, written with `mode`, and returned. */
async function readOrCreate(path: string, make: () => string, mode: number): Promise<string> {
  try {
    const value = (await Deno.readTextFile(path)).trim();
    if (value) return value;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const value = make();
  await Deno.writeTextFile(path, `${value}\n`, { mode });
  await Deno.chmod(path, mode);
  return value;
}

/** Compares a presented token with the real one in constant time. */
export async function tokenMatches(presented: string, token: string): Promise<boolean> {
  const digest = async (s: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  // Hashing first gives equal lengths, so the comparison leaks nothing about the token's length either.
  return timingSafeEqual(await digest(presented), await digest(token));
}
