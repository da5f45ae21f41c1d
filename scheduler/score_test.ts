import assert from "node:assert/strict";
import { type Candidate, needOf } from "./filter.ts";
import { score, STRAND_MARGIN, stranded, WASTE_WEIGHT } from "./score.ts";
import { ClusterState, DEFAULT_CONTAINER_MEMORY, DEFAULT_WASM_MEMORY } from "./state.ts";
import type { NodeView, ScoreParts, WorkloadView } from "./types.ts";

const MiB = 2 ** 20, GiB = 2 ** 30;

const base: NodeView = {
  id: "n",
  labels: {},
  capacity: { memory: 8 * GiB, cpuMillis: 8000 },
  gpus: [],
  runtimes: ["wasm", "container"],
  images: ["shop/api:1"],
  healthy: true,
  draining: false,
};

const api: WorkloadView = {
  id: "shop/api",
  project: "shop",
  replicas: 1,
  runtimes: ["container"],
  memory: 2 * GiB,
  cpuMillis: 2000,
  placement: { labels: {} },
  image: "shop/api:1",
};

function parts(node: NodeView, w: WorkloadView, c: Candidate, running: WorkloadView[] = []): ScoreParts {
  const state = new ClusterState([node], {
    wasmMemory: DEFAULT_WASM_MEMORY,
    containerMemory: DEFAULT_CONTAINER_MEMORY,
  });
  running.forEach((r, i) => state.add(r, { workload: r.id, replica: i, node: node.id, runtime: "container" }));
  const out = {} as ScoreParts;
  const total = score(state.byId.get(node.id)!, needOf(state, w), c, out);
  assert.equal(total, out.total);
  return out;
}

const container = (memory: number): Candidate => ({ runtime: "container", memory, gpuGroup: -1 });

Deno.test("fit: the mean share of memory and CPU in use once the replica lands, times 10", () => {
  const p = parts({ ...base, reserved: { memory: 2 * GiB, cpuMillis: 0 } }, api, container(2 * GiB));
  assert.equal(p.fit, 10 * (0.5 + 0.25) / 2);
  assert.equal(p.image, 2, "the image is cached");
  assert.equal(p.locality, 0);
  assert.equal(p.runtime, 0);
  assert.equal(p.total, p.fit + p.image);
});

Deno.test("locality: +1 where the project already runs; Wasm: +3; the image bonus is for containers", () => {
  const db: WorkloadView = { ...api, id: "shop/db", image: "postgres:16" };
  assert.equal(parts(base, api, container(2 * GiB), [db]).locality, 1);
  const fn: WorkloadView = { ...api, runtimes: ["wasm"], memory: 0, cpuMillis: 10 };
  const wasm = parts(base, fn, { runtime: "wasm", memory: DEFAULT_WASM_MEMORY, gpuGroup: -1 });
  assert.deepEqual([wasm.runtime, wasm.image], [3, 0]);
});

Deno.test("gpu: -5 for work without a GPU opening an idle GPU node, nothing once the node is busy", () => {
  const gpuNode: NodeView = { ...base, gpus: [{ vendor: "nvidia", count: 2 }] };
  assert.equal(parts(gpuNode, api, container(2 * GiB)).gpu, -5);
  const infer: WorkloadView = { ...api, id: "ml/infer", project: "ml", gpu: { vendor: "nvidia", count: 1 } };
  assert.equal(parts(gpuNode, api, container(2 * GiB), [infer]).gpu, 0);
  assert.equal(parts(gpuNode, infer, { runtime: "container", memory: 2 * GiB, gpuGroup: 0 }).gpu, 0);
});

Deno.test("stranded: only near exhaustion does an imbalance strand capacity", () => {
  assert.equal(stranded(0.5, 0.1), 0, "both resources still have room");
  assert.equal(stranded(0, 0.5), 0.5, "no memory left: half the CPU is stranded");
  assert.ok(Math.abs(stranded(STRAND_MARGIN / 2, 0.5) - (0.5 - STRAND_MARGIN / 2) / 2) < 1e-12);
  assert.equal(stranded(0, 0), 0);
});

Deno.test("waste: on a node whose memory is nearly gone, CPU-heavy work scores above memory-heavy work", () => {
  // A GPU node after its GPU work: 96% of memory used, half of its CPU.
  const busy: NodeView = { ...base, reserved: { memory: 0.96 * 8 * GiB, cpuMillis: 4000 } };
  const cpuHeavy: WorkloadView = { ...api, memory: 64 * MiB, cpuMillis: 2000 };
  const memHeavy: WorkloadView = { ...api, memory: 256 * MiB, cpuMillis: 100 };
  const good = parts(busy, cpuHeavy, container(64 * MiB));
  const bad = parts(busy, memHeavy, container(256 * MiB));
  assert.ok(good.waste > 0 && bad.waste < 0, `${good.waste} / ${bad.waste}`);
  assert.ok(good.total > bad.total);
  const before = stranded(0.04, 0.5), after = stranded(0.04 - 64 / 8192, 0.25);
  assert.ok(Math.abs(good.waste - WASTE_WEIGHT * (before - after)) < 1e-9);
});
