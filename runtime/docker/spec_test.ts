import assert from "node:assert/strict";
import { readService } from "../../config/mod.ts";
import { discoverGpus, parseGroups, parseNvidiaSmi, parseRocmSmi } from "./gpu.ts";
import { upstreamOf } from "./replicas.ts";
import { containerName, createContainerBody } from "./spec.ts";

const testdata = new URL("./testdata/", import.meta.url);
const host = {
  groups: { video: 44, render: 110 },
  amdDevices: [0, 1, 2].map((i) => ({ card: `/dev/dri/card${i}`, render: `/dev/dri/renderD${128 + i}` })),
};

const service = (extra: Record<string, unknown>) =>
  readService({ name: "api", image: "myorg/api:1", ...extra }, { file: "test" }, "shop");

Deno.test("names, labels, env, limits, ports, networks and aliases", () => {
  const s = service({
    port: 8080,
    env: { A: "1" },
    aliases: ["web"],
    resources: { memory: "512Mi", cpu: 1.5 },
    volumes: ["data:/data", "/srv/x:/x:ro"],
  });
  const body = createContainerBody(s, "shop/api@3", 2, host, "node-1");
  assert.equal(containerName(s, 2), "shop-api-2");
  assert.deepEqual(body.Labels, {
    "orca.managed": "true",
    "orca.node": "node-1",
    "orca.project": "shop",
    "orca.service": "api",
    "orca.workload": "shop/api@3",
    "orca.replica": "2",
  });
  assert.deepEqual(body.Env, ["A=1"]);
  assert.equal(body.HostConfig.Memory, 536870912);
  assert.equal(body.HostConfig.NanoCpus, 1_500_000_000);
  assert.deepEqual(body.HostConfig.PortBindings, { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
  assert.deepEqual(body.HostConfig.Binds, ["orca-shop-data:/data", "/srv/x:/x:ro"]);
  assert.deepEqual(body.NetworkingConfig.EndpointsConfig, { "orca-shop": { Aliases: ["api", "web"] } });
  assert.equal(body.HostConfig.DeviceRequests, undefined);
});

Deno.test("nvidia: DeviceRequests with the count", () => {
  const body = createContainerBody(
    service({ resources: { gpu: { count: 2, vendor: "nvidia", vram_min: 24000 } } }),
    "w",
    1,
    host,
    "n",
  );
  assert.deepEqual(body.HostConfig.DeviceRequests, [{ Driver: "nvidia", Count: 2, Capabilities: [["gpu"]] }]);
});

Deno.test("amd: /dev/kfd, the requested number of GPUs' dri nodes, video and render groups", () => {
  const body = createContainerBody(service({ resources: { gpu: { count: 2, vendor: "amd" } } }), "w", 1, host, "n");
  assert.deepEqual(body.HostConfig.Devices?.map((d) => d.PathOnHost), [
    "/dev/kfd",
    "/dev/dri/card0",
    "/dev/dri/renderD128",
    "/dev/dri/card1",
    "/dev/dri/renderD129",
  ]);
  assert.deepEqual(body.HostConfig.GroupAdd, ["44", "110"]);
});

Deno.test("GPU discovery from recorded nvidia-smi and rocm-smi output", async () => {
  const nvidia = await Deno.readTextFile(new URL("nvidia-smi.csv", testdata));
  assert.deepEqual(parseNvidiaSmi(nvidia), [
    { vendor: "nvidia", count: 2, model: "NVIDIA H100 80GB HBM3", vram: 81559 },
    { vendor: "nvidia", count: 1, model: "NVIDIA A100-SXM4-40GB", vram: 40960 },
  ]);
  const rocm = await Deno.readTextFile(new URL("rocm-smi.json", testdata));
  assert.deepEqual(parseRocmSmi(rocm), [{ vendor: "amd", count: 2, model: "AMD Instinct MI210", vram: 65520 }]);
  const tools: Record<string, string> = { "nvidia-smi": nvidia };
  assert.equal((await discoverGpus((cmd) => Promise.resolve(tools[cmd]))).length, 2);
  assert.deepEqual(await discoverGpus(() => Promise.resolve(undefined)), []);
  assert.deepEqual(parseGroups("root:x:0:\nvideo:x:44:\nrender:x:110:alice\n"), { root: 0, video: 44, render: 110 });
});

Deno.test("the proxy goes to a replica's own address on its network, else its published port, else nowhere", () => {
  const s = service({ port: 8080 });
  const replica = { n: 1, id: "c1", name: "shop-api-1", routed: true };
  assert.deepEqual(upstreamOf(s, { ...replica, ip: "172.18.0.5", hostPort: 49153 }), {
    hostname: "172.18.0.5",
    port: 8080,
  });
  assert.deepEqual(upstreamOf(s, { ...replica, hostPort: 49153 }), { hostname: "127.0.0.1", port: 49153 });
  assert.equal(upstreamOf(s, replica), undefined);
  assert.equal(upstreamOf(service({}), { ...replica, ip: "172.18.0.5" }), undefined, "no port: nothing to reach");
});
