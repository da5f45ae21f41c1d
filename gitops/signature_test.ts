import assert from "node:assert/strict";
import { constantTimeEqual, hmacHex, presentedSignature, verifySignature } from "./signature.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("webhook signatures: GitHub's and Gitea's headers, a wrong or missing one refused", async () => {
  // The example of GitHub's documentation ("Validating webhook deliveries").
  assert.equal(
    await hmacHex(enc("It's a Secret to Everybody"), enc("Hello, World!")),
    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
  );
  const secret = enc("s3cret");
  const body = enc('{"ref":"refs/heads/main"}');
  const sig = await hmacHex(secret, body);
  const github = new Headers({ "x-hub-signature-256": `sha256=${sig}` });
  assert.equal(await verifySignature(secret, github, body), "valid");
  assert.equal(await verifySignature(secret, new Headers({ "x-gitea-signature": sig }), body), "valid");
  assert.equal(await verifySignature(secret, new Headers({ "x-gogs-signature": sig.toUpperCase() }), body), "valid");
  assert.equal(await verifySignature(secret, new Headers(), body), "missing");
  assert.equal(await verifySignature(secret, new Headers({ "x-hub-signature-256": "sha256=" }), body), "missing");
  assert.equal(await verifySignature(enc("other"), github, body), "mismatch");
  assert.equal(await verifySignature(secret, github, enc('{"ref":"refs/heads/dev"}')), "mismatch");
  // A prefix of the right digest, or the digest with more after it, does not pass.
  const short = new Headers({ "x-hub-signature-256": `sha256=${sig.slice(0, 32)}` });
  assert.equal(await verifySignature(secret, short, body), "mismatch");
  const long = new Headers({ "x-hub-signature-256": `sha256=${sig}00` });
  assert.equal(await verifySignature(secret, long, body), "mismatch");
  assert.equal(presentedSignature(new Headers({ "x-hub-signature-256": " SHA256=AB " })), "ab");
  assert.ok(constantTimeEqual("abc", "abc"));
  assert.ok(!constantTimeEqual("abc", "abd") && !constantTimeEqual("ab", "abc") && !constantTimeEqual("abc", "ab"));
});
