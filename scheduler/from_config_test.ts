import assert from "node:assert/strict";
import { parseClusterFile, parseServiceFile } from "../config/mod.ts";
import { nodeFromSpec, workloadFromService } from "./from_config.ts";
import { plan } from "./plan.ts";

const services = `
[[service]]
name = "infer"
image = "myorg/infer:2"
replicas = 2
[service.resources]
memory = "16Gi"
cpu = 4.5
[service.resources.gpu]
count = 1
vendor = "nvidia"
vram_min = 24000
[service.placement]
node = "gpu-worker-1"
labels = { zone = "eu-1" }

[[service]]
name = "edge"
module = "./edge.wasm"
`;

const cluster = `
[[node]]
address = "10.0.0.3"
name = "gpu-worker-1"
labels = { zone = "eu-1", role = "gpu" }
[[node.gpus]]
vendor = "nvidia"
count = 2
model = "A100"
vram = 40960

[[node]]
address = "10.0.0.4"
labels = { zone = "eu-1" }
`;

Deno.test("service.toml becomes a workload: bytes, thousandths of a core, GPU, placement, image", () => {
  const [infer, edge] = parseServiceFile(services, "services/ml/service.toml", "ml").map(workloadFromService);
  assert.deepEqual(infer, {
    id: "ml/infer",
    project: "ml",
    replicas: 2,
    runtimes: ["container"],
    memory: 16 * 2 ** 30,
    cpuMillis: 4500,
    gpu: { vendor: "nvidia", count: 1, vramMin: 24000 },
    placement: { node: "gpu-worker-1", labels: { zone: "eu-1" } },
    image: "myorg/infer:2",
  });
  assert.deepEqual(edge, {
    id: "ml/edge",
    project: "ml",
    replicas: 1,
    runtimes: ["wasm"],
    memory: 0,
    cpuMillis: 0,
    placement: { labels: {} },
  });
});

Deno.test("cluster.toml and an agent's facts become a node; pins name it by cluster.toml name or address", () => {
  const config = parseClusterFile(cluster, "cluster.toml");
  const facts = { capacity: { memory: 64 * 2 ** 30, cpuMillis: 32_000 }, runtimes: ["wasm", "container"] as const };
  const gpuNode = nodeFromSpec(config.nodes[0], { id: "a1f3", ...facts });
  assert.deepEqual(gpuNode, {
    id: "a1f3",
    name: "gpu-worker-1",
    zone: "eu-1",
    labels: { zone: "eu-1", role: "gpu" },
    capacity: facts.capacity,
    gpus: [{ vendor: "nvidia", count: 2, model: "A100", vramMb: 40960 }],
    runtimes: ["wasm", "container"],
    images: [],
    healthy: true,
    draining: false,
  });
  const plain = nodeFromSpec(config.nodes[1], {
    id: "b2c4",
    ...facts,
    draining: true,
    gpus: [{ vendor: "amd", count: 1 }],
  });
  assert.equal(plain.name, "10.0.0.4");
  assert.equal(plain.draining, true);
  assert.deepEqual(plain.gpus, [{ vendor: "amd", count: 1 }], "discovered GPUs replace declared ones");
  assert.equal(nodeFromSpec(undefined, { id: "c", ...facts }).name, undefined);

  const workloads = parseServiceFile(services, "s.toml", "ml").map(workloadFromService);
  const p = plan({ nodes: [gpuNode, plain], placements: [] }, workloads);
  assert.deepEqual(
    p.placements.map((x) => `${x.workload}#${x.replica}@${x.node}:${x.runtime}`).sort(),
    ["ml/edge#0@a1f3:wasm", "ml/infer#0@a1f3:container", "ml/infer#1@a1f3:container"],
  );
});
