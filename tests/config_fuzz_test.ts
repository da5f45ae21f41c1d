/**
 * Fuzz of the config reader (fast-check): arbitrary TOML text, arbitrary
 * TOML documents and arbitrary JSON values go through service.toml parsing
 * and the deploy validation path (readService, as the API calls it). Each
 * either gives specs or throws an OrcaError with a message: never another
 * error type, never a long stall.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { parseCron, parseMemory, parseRoute, parseServiceFile, parseTrigger, readService } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";

/** The slowest a single call may be on a loaded machine before it counts as a stall. */
const STALL_MS = 2000;

function acceptsOrRefuses(what: string, call: () => unknown): void {
  const start = performance.now();
  try {
    call();
  } catch (err) {
    if (!(err instanceof OrcaError)) throw new Error(`${what}: ${err}`, { cause: err });
    assert.equal(err.code, "config");
    // An empty field name shows as ``; a value the document gave is quoted ("...") and may hold anything.
    const fields = err.message.replace(/"(?:[^"\\]|\\.)*"/g, '""');
    assert.ok(err.message.length > 0 && !/``/.test(fields), `${what}: empty message or field: ${err.message}`);
  }
  const ms = performance.now() - start;
  assert.ok(ms < STALL_MS, `${what} took ${ms.toFixed(0)} ms`);
}

const key = fc.oneof(
  fc.constantFrom(
    "name",
    "module",
    "image",
    "runtime",
    "triggers",
    "replicas",
    "port",
    "domain",
    "health",
    "aliases",
    "internal",
    "env",
    "command",
    "volumes",
    "resources",
    "memory",
    "cpu",
    "gpu",
    "vram_min",
    "placement",
    "readiness",
    "path",
    "interval_secs",
    "wasm",
    "files",
    "allowed_hosts",
    "instance",
    "limits",
    "timeout_ms",
    "liveness",
    "rollout",
    "strategy",
    "canary_percent",
    "analysis_secs",
    "max_error_rate",
    "max_p99_ms",
    "module_hash",
    "tree",
    "source",
    "rw",
    "",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 12 }),
);

const scalar = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    "api",
    "a.wasm",
    "../",
    "/etc",
    "./data:rw",
    "64Ki",
    "100Ti",
    "0.4",
    "http:/../../x",
    "http:/a/%2e%2e",
    "http:/a/:id/*",
    "cron:0 9 * * * EST",
    "cron:@daily Europe/Berlin",
    "queue:orders",
    "event:**.**.z",
    "wasm",
    "container",
    "a".repeat(64),
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
);

/** A JSON-ish value biased toward service-shaped tables. */
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", maxDepth: 4 },
    scalar,
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(key, tie("v"), { maxKeys: 6 }),
  ),
})).v;

/** A key: mostly one of `good`, sometimes any short text. */
const mostlyKey = (...good: string[]) =>
  fc.oneof({ arbitrary: fc.constantFrom(...good), weight: 20 }, { arbitrary: fc.string({ maxLength: 8 }), weight: 1 });

/** Mostly `good`, sometimes anything: most services get far into validation before something is off. */
const mostly = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: good, weight: 20 }, { arbitrary: scalar, weight: 1 });

const trigger = fc.oneof(
  {
    arbitrary: fc.constantFrom("http:/a", "http:/a/:id/*", "cron:*/5 * * * *", "queue:jobs", "event:orders.*"),
    weight: 6,
  },
  fc.string({ maxLength: 40 }).map((s) => `http:/${s}`),
  fc.string({ maxLength: 30 }).map((s) => `cron:${s}`),
  fc.string({ maxLength: 30 }).map((s) => `event:${s}`),
);

const service = fc.record(
  {
    name: mostly(fc.constantFrom("api", "web", "worker-1")),
    module: mostly(fc.constantFrom("a.wasm", "/abs/b.wasm")),
    triggers: fc.array(mostly(trigger), { maxLength: 4 }),
    replicas: mostly(fc.integer({ min: 0, max: 20 })),
    env: mostly(fc.dictionary(mostlyKey("A", "LOG_LEVEL"), fc.string({ maxLength: 8 }), { maxKeys: 3 })),
    resources: mostly(fc.record({
      memory: mostly(fc.constantFrom("64Ki", "128Mi", "4Gi")),
      cpu: mostly(fc.double({ min: 0.001, max: 64, noNaN: true })),
    }, {
      requiredKeys: [],
    })),
    wasm: mostly(fc.record({
      allowed_hosts: fc.array(mostly(fc.constantFrom("api.example.com", "127.0.0.1:9000")), { maxLength: 2 }),
      instance: mostly(fc.constantFrom("isolated", "reuse")),
      files: fc.dictionary(
        mostlyKey("/data", "/tmp", "/"),
        mostly(fc.constantFrom("./data", "d:rw")),
        { maxKeys: 2 },
      ),
    }, { requiredKeys: [] })),
    readiness: mostly(fc.record({ path: mostly(fc.constant("/ready")), interval_secs: mostly(fc.nat(100)) }, {
      requiredKeys: ["path"],
    })),
    limits: mostly(fc.record({ timeout_ms: mostly(fc.integer({ min: 1, max: 10_000 })) })),
    rollout: mostly(fc.record({
      strategy: mostly(fc.constantFrom("canary", "all")),
      canary_percent: mostly(fc.double({ min: 1, max: 99, noNaN: true })),
      analysis_secs: mostly(fc.integer({ min: 1, max: 86_400 })),
      max_error_rate: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
      max_p99_ms: mostly(fc.integer({ min: 1, max: 60_000 })),
    }, { requiredKeys: [] })),
  },
  { requiredKeys: ["name", "module"] },
);

/** The structured fuzz: a plausible service, or a record with anything at any key. */
const anyService = fc.oneof({ arbitrary: service, weight: 8 }, {
  arbitrary: fc.dictionary(key, value, { maxKeys: 8 }),
  weight: 1,
});

const tomlLine = fc.oneof(
  fc.constantFrom(
    "[[service]]",
    'name = "api"',
    'module = "a.wasm"',
    'image = "x"',
    "[service.resources]",
    'memory = "1"',
    "[service.wasm]",
    'files = { "/data" = "./data", "" = "" }',
    'triggers = ["http:/a", "cron:0 9 * * * EST"]',
    '"" = 1',
    "[service.readiness]",
    "interval_secs = 1e300",
    "[service.rollout]",
    'strategy = "canary"',
    "canary_percent = 1e9",
    "max_error_rate = -0.0",
    "[[service.x]]",
    "a = [[[[[[[[1]]]]]]]]",
    "x = inf",
    "d = 1979-05-27T07:32:00Z",
  ),
  fc.string({ maxLength: 40 }),
);

Deno.test("fuzz: arbitrary text as service.toml is read or refused with an OrcaError", () => {
  fc.assert(
    fc.property(fc.array(tomlLine, { maxLength: 20 }), (lines) => {
      acceptsOrRefuses("parseServiceFile", () => parseServiceFile(lines.join("\n"), "s.toml", "p"));
    }),
    { numRuns: 600 },
  );
});

Deno.test("fuzz: arbitrary TOML documents through service.toml and back through the API", () => {
  fc.assert(
    fc.property(fc.array(anyService, { minLength: 1, maxLength: 3 }), (services) => {
      let text: string;
      try {
        text = stringify({ service: services });
      } catch {
        return; // not representable in TOML (e.g. NaN keys aside, nothing to test)
      }
      acceptsOrRefuses("parseServiceFile", () => {
        for (const spec of parseServiceFile(text, "s.toml", "p")) {
          // What `orca deploy` sends (mounts read, module hashed) must pass the server's own check.
          for (const mount of Object.values(spec.wasm.files)) mount.tree = {};
          const sent = JSON.parse(JSON.stringify({ ...spec, module_hash: spec.module ? "a".repeat(64) : undefined }));
          readService(sent, { file: "deploy request" }, "p", ["projects", "p", 0], { api: true });
        }
      });
    }),
    { numRuns: 400 },
  );
});

Deno.test("fuzz: arbitrary JSON values as a deploy request's service", () => {
  const sent = service.map((s) => ({ ...s, module_hash: "a".repeat(64) }));
  fc.assert(
    fc.property(fc.oneof(sent, anyService, value, fc.anything()), fc.boolean(), (table, api) => {
      acceptsOrRefuses(
        "readService",
        () => readService(table, { file: "deploy request" }, "p", ["projects", "p", 0], { api }),
      );
    }),
    { numRuns: 800 },
  );
});

Deno.test("fuzz: trigger, route, cron and size parsers return an error, never throw", () => {
  const text = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: "binary", maxLength: 60 }));
  fc.assert(
    fc.property(text, fc.constantFrom("http:", "cron:", "queue:", "event:", ""), (s, prefix) => {
      const start = performance.now();
      parseTrigger(prefix + s);
      parseRoute(`/${s}`);
      parseCron(s);
      parseMemory(s);
      assert.ok(performance.now() - start < STALL_MS);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("fuzz: long hostile inputs do not stall the parsers", () => {
  const long = (unit: string) => unit.repeat(100_000);
  for (const s of [long(" "), long("1 "), long("a."), long("**."), long("%"), long("/"), long(":a/"), long("[")]) {
    acceptsOrRefuses("parseTrigger", () => {
      for (const type of ["http:/", "cron:", "queue:", "event:"]) parseTrigger(type + s);
      parseMemory(s);
      parseRoute(`/${s}`);
      parseCron(s);
    });
    acceptsOrRefuses(
      "parseServiceFile",
      () => parseServiceFile(`[[service]]\nname = "a"\nimage = "x"\n${s}`, "s", "p"),
    );
  }
});
