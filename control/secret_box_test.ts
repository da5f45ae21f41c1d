import assert from "node:assert/strict";
import { SecretBox } from "./secret_box.ts";

const encode = (s: string) => new TextEncoder().encode(s);

Deno.test("a sealed secret opens under its name with the cluster's key only", async () => {
  const home = await Deno.makeTempDir();
  const other = await Deno.makeTempDir();
  try {
    const box = await SecretBox.loadOrCreate(home);
    assert.equal((await Deno.stat(`${home}/secrets.key`)).mode! & 0o777, 0o600);
    assert.equal((await SecretBox.loadOrCreate(home)).id, box.id, "made once, then read");
    const sealed = await box.seal("db", encode("hunter2"));
    assert.match(sealed, new RegExp(`^v1\\.${box.id}\\.`));
    assert.ok(!sealed.includes("hunter2"));
    assert.notEqual(await box.seal("db", encode("hunter2")), sealed, "a fresh IV each time");
    assert.equal(await box.open("db", sealed), "hunter2");
    // Bound to its name: copied to another, it does not open.
    await assert.rejects(box.open("other", sealed), /does not open/);
    // Another cluster's key says which key it was sealed with.
    const stranger = await SecretBox.loadOrCreate(other);
    await assert.rejects(stranger.open("db", sealed), /sealed with key .* this node holds key/);
    // A node that joins takes the cluster's key, replacing its own.
    const adopted = await SecretBox.adopt(other, box.exported());
    assert.equal(adopted.id, box.id);
    assert.equal(await adopted.open("db", sealed), "hunter2");
    assert.equal((await Deno.stat(`${other}/secrets.key`)).mode! & 0o777, 0o600);
    await assert.rejects(SecretBox.adopt(other, "bm90IDMyIGJ5dGVz"), /not 32 bytes/);
    await assert.rejects(box.open("db", "v1.x.y"), /not in a format/);
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("a damaged key file is named, not used", async () => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${home}/secrets.key`, "c2hvcnQ=\n");
    await assert.rejects(SecretBox.loadOrCreate(home), /secrets\.key does not hold a 32-byte key/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
