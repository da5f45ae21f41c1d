import assert from "node:assert/strict";
import { configError } from "./_test_util.ts";
import { parseClusterFile } from "./cluster.ts";
import { parseServiceFile, readService } from "./service.ts";

const wasm = (extra: string) => `[[service]]\nname = "api"\nmodule = "a.wasm"\n${extra}`;
const container = (extra: string) => `[[service]]\nname = "db"\nimage = "x"\n${extra}`;

Deno.test("a Wasm service's memory: one Wasm page to 4Gi, reported at file:line with the field", () => {
  const memory = (size: string) => `[service.resources]\nmemory = "${size}"\n`;
  assert.equal(parseServiceFile(wasm(memory("64Ki")), "s.toml", "p")[0].resources.memory, 65536);
  assert.equal(parseServiceFile(wasm(memory("4Gi")), "s.toml", "p")[0].resources.memory, 4 * 2 ** 30);
  const cases: [string, RegExp][] = [
    [
      "100Ti",
      /`resources\.memory` must be at most 4Gi for a Wasm service \(what a 32-bit Wasm memory can address\), got "100Ti"/,
    ],
    ["4097Mi", /must be at most 4Gi/],
    ["0.4", /must be at least 64Ki for a Wasm service \(one Wasm page\), got "0\.4"/],
    ["1", /must be at least 64Ki/],
    ["0", /must be at least 64Ki/],
    ["99999999999999999999999Ti", /is not a valid size/],
    [`${"1".repeat(100)}`, /is not a valid size: "1{80}"\.\.\. \(100 characters\)/],
  ];
  for (const [size, expected] of cases) {
    const err = configError(() => parseServiceFile(wasm(memory(size)), "s.toml", "p"));
    assert.match(err.message, /^service "api": /);
    assert.match(err.message, expected, size);
    assert.equal(err.where, "s.toml:5", size);
  }
});

Deno.test("a container's memory: at least Docker's 6Mi; the API's byte counts are bounded the same way", () => {
  const memory = (size: string) => `[service.resources]\nmemory = "${size}"\n`;
  assert.equal(parseServiceFile(container(memory("100Ti")), "s.toml", "p")[0].resources.memory, 100 * 2 ** 40);
  assert.match(
    configError(() => parseServiceFile(container(memory("1Mi")), "s.toml", "p")).message,
    /must be at least 6Mi for a container \(Docker's minimum\)/,
  );
  const api = (memory: unknown) =>
    readService(
      { name: "api", module: "a.wasm", module_hash: "0".repeat(64), resources: { memory } },
      {
        file: "deploy request",
      },
      "p",
      [],
      { api: true },
    );
  assert.equal(api(2 ** 20).resources.memory, 2 ** 20);
  assert.match(configError(() => api(2 ** 40)).message, /`resources\.memory` must be at most 4Gi/);
  assert.match(configError(() => api(1)).message, /must be at least 64Ki/);
  assert.match(configError(() => api(1.5)).message, /is not a valid size: 1\.5/);
});

Deno.test("probe timings, GPU VRAM and node VRAM are bounded", () => {
  const probe = (key: string, value: number) => `[service.readiness]\npath = "/ready"\n${key} = ${value}\n`;
  assert.equal(parseServiceFile(container(probe("interval_secs", 86400)), "s", "p")[0].readiness?.interval_secs, 86400);
  for (const [key, value] of [["interval_secs", 1e9], ["timeout_secs", 1e6], ["initial_delay_secs", 1e12]] as const) {
    const err = configError(() => parseServiceFile(container(probe(key, value)), "s.toml", "p"));
    assert.match(err.message, new RegExp(`\`readiness\\.${key}\` must be at most`));
    assert.equal(err.where, "s.toml:6");
  }
  assert.match(
    configError(() => parseServiceFile(container(probe("failure_threshold", 1e6)), "s", "p")).message,
    /failure_threshold` must be at most 1000/,
  );
  assert.match(
    configError(() => parseServiceFile(container(`[service.readiness]\npath = "/a b"\n`), "s", "p")).message,
    /`readiness\.path` has an invalid value "\/a b"/,
  );
  assert.match(
    configError(() => parseServiceFile(container(`[service.resources.gpu]\nvram_min = 1e15\n`), "s", "p")).message,
    /`resources\.gpu\.vram_min` must be/,
  );
  assert.match(
    configError(() => parseClusterFile(`[[node]]\naddress = "a"\n[[node.gpus]]\nvendor = "amd"\nvram = 1e300\n`, "c"))
      .message,
    /`node\[0\]\.gpus\[0\]\.vram` must be/,
  );
});

Deno.test("no field error names an empty field", () => {
  const emptyKey = configError(() => parseServiceFile(wasm(`"" = 1\n`), "s.toml", "p"));
  assert.match(emptyKey.message, /^service "api": `""` is not a known key$/);
  assert.equal(emptyKey.where, "s.toml:4");
  const emptyEnv = configError(() => parseServiceFile(wasm(`env = { "" = "x" }\n`), "s.toml", "p"));
  assert.match(emptyEnv.message, /`env\.""` is not a valid environment variable name/);
  const mount = configError(() => parseServiceFile(wasm(`[service.wasm]\nfiles = { "" = "./d" }\n`), "s.toml", "p"));
  assert.match(mount.message, /`wasm\.files\.""` is not an absolute guest path/);
  const notTable = configError(() =>
    readService(42, { file: "deploy request" }, "p", ["projects", "p", 0], { api: true })
  );
  assert.equal(notTable.message, "`projects.p[0]` must be a table, got number 42");
  assert.equal(
    configError(() => readService(null, { file: "x" }, "p")).message,
    "the document must be a table, got null",
  );
  const trigger = configError(() => parseServiceFile(wasm(`triggers = ["http:/a", "nope"]\n`), "s.toml", "p"));
  assert.match(trigger.message, /`triggers\[1\]` unknown trigger type "nope"/);
});

Deno.test("a bad service name is quoted, escaped and cut short wherever it prefixes a message", () => {
  const err = configError(() =>
    readService({ name: `x\u001b[2J${"y".repeat(100)}`, image: "i" }, { file: "deploy request" }, "p")
  );
  assert.match(err.message, /^service "x\\u001b\[2Jy+"\.\.\. \(\d+ characters\): `name` has an invalid value/);
  assert.ok(!err.message.includes("\u001b"));
});

Deno.test("deployed mounts: plain relative paths only, no file that is also a folder", () => {
  const hash = "a".repeat(64);
  const mount = (tree: Record<string, string>, guest = "/data") =>
    readService(
      {
        name: "api",
        module: "a.wasm",
        module_hash: hash,
        wasm: { files: { [guest]: { source: "d", rw: false, tree } } },
      },
      { file: "deploy request" },
      "p",
      [],
      { api: true },
    );
  assert.deepEqual(mount({ "a.txt": hash, "sub/b.txt": hash }).wasm.files["/data"].tree, {
    "a.txt": hash,
    "sub/b.txt": hash,
  });
  for (const path of ["../x", "/etc/passwd", "a//b", "./a", "a/./b", "a/", "", "a\u0000b"]) {
    assert.match(configError(() => mount({ [path]: hash })).message, /is not a relative file path/, path);
  }
  assert.match(
    configError(() => mount({ "a": hash, "a/b": hash })).message,
    /`wasm\.files\."\/data"\.tree\.a` is both/,
  );
  assert.match(configError(() => mount({ "a": "nothex" })).message, /sha256/);
  for (const guest of ["/a/../b", "/a//b", "/./a", "data", "//"]) {
    assert.match(configError(() => mount({}, guest)).message, /is not an absolute guest path/, guest);
  }
  assert.ok(mount({}, "/").wasm.files["/"]);
  assert.ok(mount({}, "/data/").wasm.files["/data/"]);
});
