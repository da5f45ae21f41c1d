import assert from "node:assert/strict";
import { bearerMatches, tokenMatches } from "./auth.ts";

const token = "0123456789abcdef0123456789abcdef";

Deno.test("tokenMatches: only the token itself, whatever differs and wherever", () => {
  assert.equal(tokenMatches(token, token), true);
  for (let i = 0; i < token.length; i++) {
    const wrong = token.slice(0, i) + (token[i] === "0" ? "1" : "0") + token.slice(i + 1);
    assert.equal(tokenMatches(wrong, token), false, `differs at ${i}`);
  }
  for (
    const other of ["", token.slice(0, -1), `${token}0`, `${token}\u0000`, token.toUpperCase(), "x".repeat(70_000)]
  ) {
    assert.equal(tokenMatches(other, token), false, JSON.stringify(other.slice(0, 40)));
  }
  // A presented char that differs only above its low byte (U+0130 against 'f') is still a difference.
  assert.equal(tokenMatches(`${token.slice(0, -1)}\u0130`, token), false);
  assert.equal(tokenMatches("", ""), false, "an empty token never matches");
});

Deno.test("bearerMatches: the Bearer scheme in any case, with spaces or a tab; nothing else", () => {
  const req = (authorization?: string) =>
    new Request("http://127.0.0.1/", authorization === undefined ? {} : { headers: { authorization } });
  for (const ok of [`Bearer ${token}`, `bearer ${token}`, `BEARER\t${token}`, `Bearer   ${token}  `]) {
    assert.equal(bearerMatches(req(ok), token), true, ok);
  }
  for (const bad of [undefined, "", "Bearer", "Bearer ", `Basic ${token}`, `Bearer${token}`, `Bearer ${token}x`]) {
    assert.equal(bearerMatches(req(bad), token), false, String(bad));
  }
});
