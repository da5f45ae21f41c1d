import assert from "node:assert/strict";
import { cgiEnv, parseCgiOutput } from "./wagi.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("CGI output: status, fields in lower case (repeats kept), Location without a status is a 302", () => {
  const ok = parseCgiOutput(bytes("Content-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\nStatus: 201\r\n\r\nbody"))!;
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.headers, [["content-type", "text/plain"], ["x-a", "1"], ["x-a", "2"]]);
  assert.equal(text(ok.body), "body");
  const moved = parseCgiOutput(bytes("Location: /next\n\n"))!;
  assert.equal(moved.status, 302);
  assert.equal(parseCgiOutput(bytes("Status: 204\n\nignored"))!.body.length, 0);
});

Deno.test("CGI output that is not a header block is refused, whatever the guest wrote", () => {
  for (
    const bad of [
      "no header block at all",
      "Bad Name: x\r\n\r\n", // a space in a field name
      "X-Ok: a\0b\r\n\r\n", // a NUL in a value
      ": empty name\r\n\r\n",
      "Status: 99\r\n\r\n",
      "Status: teapot\r\n\r\n",
      "Content-Type text/plain\r\n\r\n", // no colon
    ]
  ) assert.equal(parseCgiOutput(bytes(bad)), undefined, JSON.stringify(bad));
});

Deno.test("the CGI environment: request fields as HTTP_*, type and length as CGI has them, never Authorization", () => {
  const env = cgiEnv(
    "POST",
    new URL("http://web.example:8080/api/items?x=1"),
    [["content-type", "application/json"], ["authorization", "Bearer secret"], ["x-trace-id", "t1"]],
    { params: { id: "7" }, route: "/api/*", rest: "items" },
    12,
  );
  assert.equal(env.CONTENT_TYPE, "application/json");
  assert.equal(env.CONTENT_LENGTH, "12");
  assert.equal(env.HTTP_X_TRACE_ID, "t1");
  assert.equal(env.HTTP_AUTHORIZATION, undefined);
  assert.equal(env.HTTP_CONTENT_TYPE, undefined);
  assert.equal(env.SCRIPT_NAME, "/api");
  assert.equal(env.QUERY_STRING, "x=1");
  assert.equal(env.SERVER_PORT, "8080");
  assert.equal(env.ORCA_PARAM_ID, "7");
});
