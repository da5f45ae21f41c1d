import assert from "node:assert/strict";
import { isSecretRef, refsIn, resolveService, serviceRefs, substitute } from "./secrets.ts";
import { readService } from "./service.ts";
import type { OrcaError } from "../errors.ts";

Deno.test("secret references: found in order, malformed ones named", () => {
  assert.deepEqual(refsIn("postgres://app:${secrets.db_pw}@db/${secrets.db-name}"), { names: ["db_pw", "db-name"] });
  assert.deepEqual(refsIn("plain ${HOME} and $${x}"), { names: [] });
  for (
    const bad of ["${secrets.}", "${secrets.a b}", "${secrets.x", "${secrets.9x}", `\${secrets.${"a".repeat(65)}}`]
  ) {
    assert.ok("error" in refsIn(bad), bad);
  }
  assert.equal(substitute("a=${secrets.a}; b=${secrets.b}; ${HOME}", (n) => n.toUpperCase()), "a=A; b=B; ${HOME}");
  // A value is put in as it is: a `$&` or another reference inside it is not expanded again.
  assert.equal(substitute("${secrets.a}", () => "$& ${secrets.b}"), "$& ${secrets.b}");
  assert.ok(isSecretRef("${secrets.site_key}"));
  assert.ok(!isSecretRef("key-${secrets.site_key}"));
});

Deno.test("a service's references: env, command and tls, each with its field; resolved in place", () => {
  const spec = readService(
    {
      name: "db",
      image: "postgres:16",
      env: { PASSWORD: "${secrets.pw}", PLAIN: "x" },
      command: ["postgres", "-c", "password=${secrets.pw}"],
      domain: "db.example.com",
      tls: { cert: "cert.pem", key: "${secrets.site_key}" },
    },
    { file: "services/data/service.toml" },
    "data",
  );
  assert.deepEqual(serviceRefs(spec), [
    { field: "env.PASSWORD", name: "pw" },
    { field: "command[2]", name: "pw" },
  ]);
  const withPem = {
    ...spec,
    tls: { cert: "cert.pem", key: "${secrets.site_key}", cert_pem: "C", key_pem: "${secrets.site_key}" },
  };
  assert.deepEqual(serviceRefs(withPem).map((r) => r.field), ["env.PASSWORD", "command[2]", "tls.key"]);
  const resolved = resolveService(withPem, (n) => `<${n}>`);
  assert.equal(resolved.env.PASSWORD, "<pw>");
  assert.equal(resolved.env.PLAIN, "x");
  assert.deepEqual(resolved.command, ["postgres", "-c", "password=<pw>"]);
  assert.deepEqual(resolved.tls, {
    cert: "cert.pem",
    key: "${secrets.site_key}",
    cert_pem: "C",
    key_pem: "<site_key>",
  });
  // The spec itself keeps its references.
  assert.equal(withPem.env.PASSWORD, "${secrets.pw}");
});

Deno.test("malformed references are config errors naming the file and field", () => {
  const read = (raw: Record<string, unknown>) => () =>
    readService({ name: "web", module: "web.wasm", ...raw }, { file: "services/shop/service.toml" }, "shop");
  const names = (message: RegExp) => (err: unknown) => {
    const e = err as OrcaError;
    return e.code === "config" && /services\/shop\/service\.toml/.test(e.where ?? "") && message.test(e.message);
  };
  assert.throws(read({ env: { A: "${secrets.}" } }), names(/`env\.A` has an invalid secret reference/));
  assert.throws(
    read({ domain: "a.example.com", tls: { cert: "c.pem", key: "k-${secrets.x}" } }),
    names(/`tls\.key` is a path or a whole \$\{secrets\.NAME\}/),
  );
});
