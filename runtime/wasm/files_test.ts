import assert from "node:assert/strict";
import { buildTree, type FileEntry } from "./files.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (e: FileEntry | undefined) => e && "source" in e ? new TextDecoder().decode(e.source) : undefined;

Deno.test("mounted files may be named like Object's own properties: no prototype is read or written", () => {
  const tree = buildTree([
    ["__proto__", bytes("p")],
    ["constructor", bytes("c")],
    ["toString/hasOwnProperty", bytes("h")],
    ["a/__proto__/polluted", bytes("x")],
  ]);
  assert.ok("dir" in tree);
  assert.equal(text(tree.dir["__proto__"]), "p");
  assert.equal(text(tree.dir["constructor"]), "c");
  const sub = tree.dir["toString"];
  assert.ok(sub && "dir" in sub);
  assert.equal(text(sub.dir["hasOwnProperty"]), "h");
  assert.deepEqual(Object.keys(tree.dir).sort(), ["__proto__", "a", "constructor", "toString"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype untouched");
  assert.equal(tree.dir["valueOf"], undefined, "a name not mounted is not found");
});
