import assert from "node:assert/strict";
import { headerPairs, withLength } from "./upstream.ts";

Deno.test("withLength: a body held whole says its true length, whatever length or coding it carried", () => {
  assert.deepEqual(withLength([["content-type", "text/plain"]], 5), [["content-type", "text/plain"], [
    "content-length",
    "5",
  ]]);
  // A guest that said another length, in any case, or a transfer coding: replaced by the one length that is true.
  assert.deepEqual(
    withLength([["Content-Length", "999"], ["x-a", "1"], ["transfer-encoding", "chunked"], ["content-length", "7"]], 0),
    [["x-a", "1"], ["content-length", "0"]],
  );
});

Deno.test("a request's header pairs are read once per request object; a request made anew is read anew", () => {
  const request = new Request("http://x/", { headers: { "x-b": "2", "x-a": "1", "x-orca-proxied": "t" } });
  const pairs = headerPairs(request);
  assert.deepEqual(pairs, [["x-a", "1"], ["x-b", "2"], ["x-orca-proxied", "t"]]);
  assert.equal(headerPairs(request), pairs, "the same array the second time");
  const headers = new Headers(request.headers);
  headers.delete("x-orca-proxied");
  const stripped = new Request(request, { headers });
  assert.deepEqual(headerPairs(stripped), [["x-a", "1"], ["x-b", "2"]]);
});
