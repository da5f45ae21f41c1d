import assert from "node:assert/strict";
import { escapeControls, forTerminal } from "./terminal.ts";
import { table } from "./command.ts";

Deno.test("control characters from guests are shown as escapes, never sent raw to a terminal", () => {
  const hostile = "ok\x1b]0;owned\x07\x1b[2J\rfake line\n\u202eevil\x9b";
  const shown = escapeControls(hostile);
  assert.equal(shown, "ok\\x1b]0;owned\\x07\\x1b[2J\\rfake line\\n\\u202eevil\\x9b");
  assert.ok([...shown].every((c) => c.charCodeAt(0) >= 0x20 && !(c >= "\x7f" && c <= "\x9f")));
  assert.equal(escapeControls("tabs\tand ünïcode stay"), "tabs\tand ünïcode stay");
  assert.equal(forTerminal(hostile, { isTerminal: () => true }), shown);
  assert.equal(forTerminal(hostile, { isTerminal: () => false }), hostile); // piped: byte for byte
});

Deno.test("table cells are escaped and stay aligned", () => {
  const out = table(["TOPIC", "BODY"], [["a", "x\x1b[31my"], ["bb", "z"]]);
  assert.equal(out, "TOPIC  BODY\na      x\\x1b[31my\nbb     z");
});
