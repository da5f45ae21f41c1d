import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";
import { configError } from "./_test_util.ts";
import { loadProject } from "./project.ts";
import { parseServiceFile, readService } from "./service.ts";

const WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

async function openssl(dir: string, name: string, file: string): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
      ...["-keyout", `${dir}/${file}.key`, "-out", `${dir}/${file}.pem`, "-subj", `/CN=${name}`],
      ...["-addext", `subjectAltName=DNS:${name}`],
    ],
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

/** A project whose service names `tls` (TOML), with a certificate for a.example (a.pem/a.key) and for b.example. */
async function project(tls: string, domain = "a.example"): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "orca-tls-" });
  const web = `${root}/services/web`;
  await Deno.mkdir(web, { recursive: true });
  await Deno.writeFile(`${web}/hello.wasm`, WASM);
  await openssl(web, "a.example", "a");
  await openssl(web, "b.example", "b");
  await Deno.writeTextFile(
    `${web}/service.toml`,
    `[[service]]\nname = "api"\nmodule = "hello.wasm"\ndomain = "${domain}"\ntls = ${tls}\n`,
  );
  return root;
}

async function loadError(root: string): Promise<OrcaError> {
  try {
    await loadProject(root);
  } catch (err) {
    assert.ok(err instanceof OrcaError, `expected OrcaError, got ${err}`);
    return err;
  }
  assert.fail("expected the project to be refused");
}

const toml = (lines: string) => `[[service]]\nname = "api"\nmodule = "x.wasm"\n${lines}\n`;

Deno.test("tls: own files are read, checked against the domain, and carried in the spec", async () => {
  const root = await project('{ cert = "a.pem", key = "a.key" }');
  const [api] = (await loadProject(root)).projects.get("web")!;
  assert.ok(api.tls !== undefined && api.tls !== "off");
  assert.match(api.tls.cert_pem!, /BEGIN CERTIFICATE/);
  assert.match(api.tls.key_pem!, /PRIVATE KEY/);
  // What the CLI sends is read back by the server (api mode), PEM and all.
  const again = readService(JSON.parse(JSON.stringify(api)), { file: "request" }, "web", [], { api: true });
  assert.deepEqual(again.tls, api.tls);
});

Deno.test("tls: a key of another certificate, a certificate of another domain, missing or junk files are refused by field", async () => {
  let err = await loadError(await project('{ cert = "a.pem", key = "b.key" }'));
  assert.match(err.message, /tls\.key.*does not belong to the certificate/);
  assert.match(err.where ?? "", /service\.toml:\d+$/);
  err = await loadError(await project('{ cert = "b.pem", key = "b.key" }'));
  assert.match(err.message, /tls\.cert.*does not cover the domain "a\.example"/);
  err = await loadError(await project('{ cert = "nope.pem", key = "a.key" }'));
  assert.match(err.message, /tls\.cert.*cannot be read/);
  err = await loadError(await project('{ cert = "hello.wasm", key = "a.key" }'));
  assert.match(err.message, /tls\.cert.*is not a PEM certificate/);
  err = await loadError(await project('{ cert = "a.pem", key = "/dev/zero" }'));
  assert.match(err.message, /tls\.key.*is not a regular file/);
});

Deno.test("tls: off, a bad value, no domain, an unknown key, and a hostile API body", () => {
  const [off] = parseServiceFile(toml('domain = "a.example"\ntls = "off"\nhttps_redirect = false'), "s.toml", "p");
  assert.equal(off.tls, "off");
  assert.equal(off.https_redirect, false);
  assert.match(
    configError(() => parseServiceFile(toml('domain = "a.example"\ntls = "on"'), "s.toml", "p")).message,
    /tls.*invalid value "on"/,
  );
  assert.match(
    configError(() => parseServiceFile(toml('tls = "off"'), "s.toml", "p")).message,
    /tls.*needs a `domain`/,
  );
  assert.match(
    configError(() =>
      parseServiceFile(toml('domain = "a.example"\ntls = { cert = "a", key = "b", ca = "c" }'), "s.toml", "p")
    ).message,
    /tls\.ca/,
  );
  // The API needs the PEM text, and checks it as the CLI does.
  const body = { name: "api", module: "x.wasm", module_hash: "0".repeat(64), domain: "a.example" };
  assert.match(
    configError(() =>
      readService({ ...body, tls: { cert: "a", key: "b" } }, { file: "request" }, "p", [], { api: true })
    ).message,
    /tls\.cert_pem.*required/,
  );
  assert.match(
    configError(() =>
      readService(
        { ...body, tls: { cert: "a", key: "b", cert_pem: "junk", key_pem: "junk" } },
        { file: "request" },
        "p",
        [],
        { api: true },
      )
    ).message,
    /tls\.cert.*not a PEM certificate/,
  );
});

Deno.test("domain: an internationalized name is kept in its ASCII form", () => {
  const [s] = parseServiceFile(toml('domain = "Bücher.Example"'), "s.toml", "p");
  assert.equal(s.domain, "xn--bcher-kva.example");
  assert.match(
    configError(() => parseServiceFile(toml('domain = "a b.example"'), "s.toml", "p")).message,
    /domain.*invalid value/,
  );
});
