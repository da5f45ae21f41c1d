import assert from "node:assert/strict";
import { withLength } from "./upstream.ts";

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
