/**
 * The webhook's signature check: HMAC-SHA256 of the raw body under a shared
 * secret, as GitHub (`X-Hub-Signature-256: sha256=<hex>`) and Gitea / Gogs
 * (`X-Gitea-Signature: <hex>`, `X-Gogs-Signature`) send it. Compared in
 * constant time over the whole digest.
 */

export type Verdict = "valid" | "missing" | "mismatch";

/** The signature a request carries (lowercase hex), or undefined when it has none of the known headers. */
export function presentedSignature(headers: Headers): string | undefined {
  const github = headers.get("x-hub-signature-256");
  if (github !== null) return github.trim().replace(/^sha256=/i, "").toLowerCase();
  const gitea = headers.get("x-gitea-signature") ?? headers.get("x-gogs-signature");
  return gitea === null ? undefined : gitea.trim().toLowerCase();
}

export async function hmacHex(secret: Uint8Array, body: Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body as Uint8Array<ArrayBuffer>));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether `headers` carry a valid signature of `body` under `secret`. */
export async function verifySignature(secret: Uint8Array, headers: Headers, body: Uint8Array): Promise<Verdict> {
  const presented = presentedSignature(headers);
  if (presented === undefined || presented === "") return "missing";
  const expected = await hmacHex(secret, body);
  return constantTimeEqual(presented, expected) ? "valid" : "mismatch";
}

/** Equal strings, compared without an early exit (the length of a SHA-256 hex digest is no secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a.charCodeAt(i) || 0) ^ b.charCodeAt(i);
  return diff === 0;
}
