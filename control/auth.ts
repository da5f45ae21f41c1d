/** The cluster token: made once per data dir, required on every API call. */

import { OrcaError } from "../errors.ts";

/**
 * Reads `<home>/cluster.token`, creating it (mode 0600) on first start: with `given` (a server joining a cluster
 * keeps its cluster's token), else a new random one. A data dir whose token differs from `given` is refused.
 */
export async function loadOrCreateToken(home: string, given?: string): Promise<string> {
  if (given !== undefined && !/^[A-Za-z0-9._~-]{16,256}$/.test(given)) {
    throw new OrcaError("usage", "--token must be 16-256 letters, digits, . _ ~ -", {
      hint: "use the cluster's token: the content of $ORCA_HOME/cluster.token on one of its servers",
    });
  }
  // Hex: safe in headers, shells and flags (a base64url token can start with "-").
  const make = () =>
    given ?? Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
  const token = await readOrCreate(`${home}/cluster.token`, make, 0o600);
  if (given !== undefined && token !== given) {
    throw new OrcaError("usage", `the data dir ${home} belongs to another cluster (its cluster.token differs)`, {
      hint: "start the server with a fresh --home to join this cluster, or pass that cluster's token",
    });
  }
  return token;
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

/** Whether `request` carries `Authorization: Bearer <token>` (the scheme in any letter case, RFC 9110). */
export function bearerMatches(request: Request, token: string): boolean {
  const presented = /^bearer[ \t]+(.*)$/is.exec(request.headers.get("authorization") ?? "")?.[1].trim() ?? "";
  return presented !== "" && tokenMatches(presented, token);
}

/**
 * Compares a presented token with the real one in time that depends on the real token's length only: every
 * character of it is compared, whatever the presented one holds and however long it is. Plain JavaScript and
 * synchronous: every API call checks the token (twice when a follower may forward it), and node:crypto's hash and
 * timingSafeEqual cost ~30 us a call through Deno's Node layer, a digest in WebCrypto a turn of the event loop.
 */
export function tokenMatches(presented: string, token: string): boolean {
  // A length that differs fails without saying where; past its end, a presented char reads as 0 (NaN | 0).
  let diff = presented.length ^ token.length;
  for (let i = 0; i < token.length; i++) diff |= (presented.charCodeAt(i) | 0) ^ token.charCodeAt(i);
  return diff === 0 && token.length > 0;
}
