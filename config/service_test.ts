import assert from "node:assert/strict";
import { configError } from "./_test_util.ts";
import { parseClusterFile } from "./cluster.ts";
import { parseServiceFile } from "./service.ts";
import { parseMemory } from "./units.ts";

const full = `
[[service]]
name = "api"
image = "myorg/api:latest"
replicas = 3
port = 8080
domain = "api.example.com"
health = "/healthz"
aliases = ["db"]
internal = true
env = { LOG = "debug" }

[service.resources]
memory = "512Mi"
cpu = 1.5

[service.resources.gpu]
count = 2
vendor = "amd"
vram_min = 24000

[service.placement]
node = "gpu-worker-1"
labels = { zone = "eu-1" }

[service.readiness]
path = "/ready"
interval_secs = 5
timeout_secs = 3
failure_threshold = 3
initial_delay_secs = 10

[service.liveness]
path = "/healthz"

[[service]]
name = "edge"
module = "./edge.wasm"
triggers = ["http:/api/edge/*", "cron:0 9 * * *", "queue:orders", "event:deploy.*"]
[service.wasm]
allowed_hosts = ["api.example.com", "127.0.0.1:9000"]
`;

Deno.test("every key of seed 002 parses into the typed model", () => {
  const [api, edge] = parseServiceFile(full, "services/web/service.toml", "web");
  assert.equal(api.runtime, "container");
  assert.equal(api.replicas, 3);
  assert.equal(api.resources.memory, 512 * 1024 * 1024);
  assert.deepEqual(api.resources.gpu, { count: 2, vendor: "amd", vram_min: 24000 });
  assert.deepEqual(api.placement, { node: "gpu-worker-1", labels: { zone: "eu-1" } });
  assert.equal(api.readiness?.initial_delay_secs, 10);
  assert.deepEqual(api.liveness, {
    path: "/healthz",
    interval_secs: 10,
    timeout_secs: 3,
    failure_threshold: 3,
    initial_delay_secs: 0,
  });
  assert.equal(edge.runtime, "wasm");
  assert.equal(edge.triggers.length, 4);
  assert.deepEqual(edge.wasm.allowed_hosts, ["api.example.com", "127.0.0.1:9000"]);
});

Deno.test("a typo names file, line, service and the closest key", () => {
  const text = `[[service]]\nname = "api"\nimage = "x"\nreplica = 3\n`;
  const err = configError(() => parseServiceFile(text, "services/web/service.toml", "web"));
  assert.equal(err.where, "services/web/service.toml:4");
  assert.match(err.message, /service "api": `replica` is not a known key \(did you mean `replicas`\?\)/);
});

Deno.test("a typo in a sub-table is located in that table", () => {
  const text =
    `[[service]]\nname = "a"\nimage = "x"\n[[service]]\nname = "b"\nimage = "y"\n[service.resources]\nmemroy = "1Gi"\n`;
  const err = configError(() => parseServiceFile(text, "s.toml", "p"));
  assert.equal(err.where, "s.toml:8");
  assert.match(err.message, /service "b": `resources.memroy` .*did you mean `memory`/);
});

Deno.test("malformed TOML gives file and line", () => {
  const err = configError(() => parseServiceFile(`[[service]]\nname = "a"\nimage = = "x"\n`, "s.toml", "p"));
  assert.match(err.where ?? "", /^s\.toml:3:\d+$/);
  assert.match(err.message, /Cannot parse s\.toml/);
});

Deno.test("bad memory sizes, unknown triggers and duplicate names are errors", () => {
  const mem = configError(() =>
    parseServiceFile(`[[service]]\nname="a"\nimage="x"\n[service.resources]\nmemory = "lots"\n`, "s.toml", "p")
  );
  assert.match(mem.message, /`resources.memory` is not a valid size: "lots"/);
  assert.equal(mem.where, "s.toml:5");
  const trig = configError(() =>
    parseServiceFile(`[[service]]\nname="a"\nmodule="a.wasm"\ntriggers=["htp:/x"]\n`, "s.toml", "p")
  );
  assert.match(trig.message, /unknown trigger type "htp" \(did you mean `http`\?\)/);
  const dup = configError(() =>
    parseServiceFile(`[[service]]\nname="a"\nimage="x"\n[[service]]\nname="a"\nimage="y"\n`, "s.toml", "p")
  );
  assert.match(dup.message, /declared twice/);
});

Deno.test("runtime defaults follow image and module", () => {
  const none = configError(() => parseServiceFile(`[[service]]\nname="a"\n`, "s.toml", "p"));
  assert.match(none.message, /`image` is required/);
  const both = configError(() =>
    parseServiceFile(`[[service]]\nname="a"\nimage="x"\nmodule="m.wasm"\n`, "s.toml", "p")
  );
  assert.match(both.message, /cannot be combined/);
});

Deno.test("cluster.toml: nodes, labels, gpus and network", () => {
  const c = parseClusterFile(
    `[cluster]\nname = "prod"\n[cluster.network]\nprovider = "netbird"\nsetup_key = "\${secrets.netbird_key}"\n` +
      `[[node]]\naddress = "10.0.0.1"\nlabels = { zone = "eu-1" }\n[[node]]\naddress = "10.0.0.3"\n[[node.gpus]]\nvendor = "nvidia"\ncount = 2\nmodel = "A100"\n`,
    "cluster.toml",
  );
  assert.equal(c.cluster.name, "prod");
  assert.equal(c.cluster.network?.provider, "netbird");
  assert.equal(c.nodes.length, 2);
  assert.deepEqual(c.nodes[1].gpus, [{ vendor: "nvidia", count: 2, model: "A100" }]);
  const err = configError(() =>
    parseClusterFile(`[[node]]\naddress = "a"\n[[node.gpus]]\nvendro = "amd"\n`, "cluster.toml")
  );
  assert.equal(err.where, "cluster.toml:4");
  assert.match(err.message, /did you mean `vendor`/);
});

Deno.test("memory sizes", () => {
  assert.equal(parseMemory("512Mi"), 536870912);
  assert.equal(parseMemory("1Gi"), 1073741824);
  assert.equal(parseMemory("64M"), 64e6);
  assert.equal(parseMemory("1.5Gi"), 1610612736);
  assert.equal(parseMemory("12 parsecs"), undefined);
  assert.equal(parseMemory("0"), undefined);
});

Deno.test("[service.wasm] instance: isolated or reuse, for wasm services only; anything else names the field", () => {
  const wasm = (extra: string) =>
    `[[service]]\nname = "edge"\nmodule = "./edge.wasm"\ntriggers = ["http:/x"]\n[service.wasm]\n${extra}\n`;
  assert.equal(parseServiceFile(wasm('instance = "reuse"'), "s.toml", "p")[0].wasm.instance, "reuse");
  assert.equal(parseServiceFile(wasm('instance = "isolated"'), "s.toml", "p")[0].wasm.instance, "isolated");
  assert.equal(parseServiceFile(wasm(""), "s.toml", "p")[0].wasm.instance, undefined, "unset: isolated");
  const bad = configError(() => parseServiceFile(wasm('instance = "shared"'), "s.toml", "p"));
  assert.equal(bad.where, "s.toml:6");
  assert.match(bad.message, /`wasm.instance` has an invalid value "shared"/);
  assert.match(bad.hint ?? "", /"isolated" or "reuse"/);
  assert.match(configError(() => parseServiceFile(wasm("instance = 1"), "s.toml", "p")).message, /must be a string/);
  assert.match(configError(() => parseServiceFile(wasm('instances = "reuse"'), "s.toml", "p")).message, /instance/);
  const container = `[[service]]\nname = "db"\nimage = "redis:7"\n[service.wasm]\ninstance = "reuse"\n`;
  assert.match(configError(() => parseServiceFile(container, "s.toml", "p")).message, /applies to wasm services only/);
});
