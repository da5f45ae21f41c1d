import assert from "node:assert/strict";
import {
  cores,
  cpu,
  feasible,
  gpu,
  labels,
  memory,
  needOf,
  newCandidate,
  pinned,
  rejections,
  runtime,
} from "./filter.ts";
import { ClusterState, DEFAULT_CONTAINER_MEMORY, DEFAULT_WASM_MEMORY, type NodeState } from "./state.ts";
import type { NodeView, WorkloadView } from "./types.ts";

const MiB = 2 ** 20, GiB = 2 ** 30;

function node(over: Partial<NodeView> & { id: string }): NodeView {
  return {
    labels: {},
    capacity: { memory: 4 * GiB, cpuMillis: 4000 },
    gpus: [],
    runtimes: ["wasm", "container"],
    images: [],
    healthy: true,
    draining: false,
    ...over,
  };
}

function workload(over: Partial<WorkloadView> = {}): WorkloadView {
  return {
    id: "p/w",
    project: "p",
    replicas: 1,
    runtimes: ["container"],
    memory: 256 * MiB,
    cpuMillis: 500,
    placement: { labels: {} },
    ...over,
  };
}

function setup(nodes: NodeView[], w: WorkloadView) {
  const state = new ClusterState(nodes, { wasmMemory: DEFAULT_WASM_MEMORY, containerMemory: DEFAULT_CONTAINER_MEMORY });
  const need = needOf(state, w);
  const at = (id: string): NodeState => state.byId.get(id)!;
  return { state, need, at };
}

Deno.test("placement.node matches an id or a name exactly, never a prefix", () => {
  const nodes = [node({ id: "gpu-1" }), node({ id: "gpu-10" }), node({ id: "x7", name: "gpu-100" })];
  for (const [pin, want] of [["gpu-1", ["gpu-1"]], ["gpu-10", ["gpu-10"]], ["gpu-100", ["x7"]], ["gpu", []]] as const) {
    const { state, need, at } = setup(nodes, workload({ placement: { node: pin, labels: {} } }));
    const ok = nodes.filter((n) => pinned(state, at(n.id), need, newCandidate(), true) === undefined).map((n) => n.id);
    assert.deepEqual(ok, want, pin);
  }
  const { state, need, at } = setup(nodes, workload({ placement: { node: "gpu-1", labels: {} } }));
  assert.equal(pinned(state, at("gpu-10"), need, newCandidate(), true), "not gpu-1 (placement.node)");
});

Deno.test("labels: every one must match, and each mismatch is named", () => {
  const nodes = [node({ id: "a", labels: { zone: "eu", disk: "hdd" } })];
  const { state, need, at } = setup(
    nodes,
    workload({ placement: { labels: { zone: "eu", disk: "ssd", gpu: "yes" } } }),
  );
  assert.equal(
    labels(state, at("a"), need, newCandidate(), true),
    "label disk=ssd wanted, has disk=hdd; label gpu=yes wanted, has none",
  );
  const fine = setup(nodes, workload({ placement: { labels: { zone: "eu" } } }));
  assert.equal(labels(fine.state, fine.at("a"), fine.need, newCandidate(), true), undefined);
});

Deno.test("runtime: Wasm wherever both can, a container otherwise, and GPUs only in containers", () => {
  const nodes = [
    node({ id: "both" }),
    node({ id: "docker", runtimes: ["container"] }),
    node({ id: "wasm", runtimes: ["wasm"] }),
  ];
  const c = newCandidate();
  const both = setup(nodes, workload({ runtimes: ["container", "wasm"], memory: 0 }));
  assert.equal(runtime(both.state, both.at("both"), both.need, c, true), undefined);
  assert.deepEqual([c.runtime, c.memory], ["wasm", DEFAULT_WASM_MEMORY]);
  assert.equal(runtime(both.state, both.at("docker"), both.need, c, true), undefined);
  assert.deepEqual([c.runtime, c.memory], ["container", DEFAULT_CONTAINER_MEMORY]);
  const image = setup(nodes, workload());
  assert.equal(runtime(image.state, image.at("wasm"), image.need, c, true), "no container runtime");
  const gpuWasm = setup(nodes, workload({ runtimes: ["wasm"], gpu: { vendor: "nvidia", count: 1 } }));
  assert.equal(
    runtime(gpuWasm.state, gpuWasm.at("both"), gpuWasm.need, c, true),
    "GPUs need the container runtime; the workload runs only as Wasm",
  );
  const gpuBoth = setup(nodes, workload({ runtimes: ["wasm", "container"], gpu: { vendor: "nvidia", count: 1 } }));
  assert.equal(runtime(gpuBoth.state, gpuBoth.at("both"), gpuBoth.need, c, true), undefined);
  assert.equal(c.runtime, "container");
});

Deno.test("memory and CPU: what is needed against what is free, in the units users write", () => {
  const nodes = [
    node({ id: "a", capacity: { memory: GiB, cpuMillis: 1000 }, reserved: { memory: 768 * MiB, cpuMillis: 500 } }),
  ];
  const { state, need, at } = setup(nodes, workload({ memory: 512 * MiB, cpuMillis: 2000 }));
  const c = newCandidate();
  runtime(state, at("a"), need, c, true);
  assert.equal(memory(state, at("a"), need, c, true), "needs 512Mi memory, 256Mi free");
  assert.equal(cpu(state, at("a"), need, c, true), "needs 2 cpu, 0.5 free");
  assert.equal(memory(state, at("a"), need, c, false), "rejected", "no string is built on the fast path");
  assert.equal(cores(1250), "1.25");
});

Deno.test("GPU: vendor, count and vram_min, from the group left fullest", () => {
  const gpus = [
    { vendor: "nvidia" as const, model: "A100", vramMb: 40960, count: 4 },
    { vendor: "nvidia" as const, model: "A100", vramMb: 40960, count: 1 },
    { vendor: "nvidia" as const, model: "T4", vramMb: 16000, count: 8 },
  ];
  const nodes = [node({ id: "g", gpus }), node({ id: "cpu" })];
  const c = newCandidate();
  const one = setup(nodes, workload({ gpu: { vendor: "nvidia", count: 1, vramMin: 24000 } }));
  assert.equal(gpu(one.state, one.at("g"), one.need, c, true), undefined);
  assert.equal(c.gpuGroup, 1, "the single A100 goes first; the group of four stays whole");
  assert.equal(gpu(one.state, one.at("cpu"), one.need, c, true), "needs 1 nvidia GPU, has none");
  const amd = setup(nodes, workload({ gpu: { vendor: "amd", count: 1 } }));
  assert.equal(gpu(amd.state, amd.at("g"), amd.need, c, true), "needs 1 amd GPU, has none");
  const big = setup(nodes, workload({ gpu: { vendor: "nvidia", count: 2, vramMin: 80000 } }));
  assert.equal(
    gpu(big.state, big.at("g"), big.need, c, true),
    "needs 2 nvidia GPUs with >= 80000 MB VRAM, has 40960 MB",
  );
  const many = setup(nodes, workload({ gpu: { vendor: "nvidia", count: 5, vramMin: 24000 } }));
  assert.equal(gpu(many.state, many.at("g"), many.need, c, true), "needs 5 nvidia GPUs with >= 24000 MB VRAM, 4 free");
  many.state.add(many.need.w, {
    workload: "p/w",
    replica: 0,
    node: "g",
    runtime: "container",
    gpu: { group: 0, count: 4 },
  });
  assert.equal(gpu(many.state, many.at("g"), many.need, c, true), "needs 5 nvidia GPUs with >= 24000 MB VRAM, 1 free");
});

Deno.test("unhealthy and draining nodes take nothing; every reason is listed, the fast path agrees", () => {
  const nodes = [
    node({ id: "sick", healthy: false }),
    node({ id: "leaving", draining: true, capacity: { memory: 128 * MiB, cpuMillis: 4000 } }),
    node({ id: "fine" }),
  ];
  const { state, need, at } = setup(nodes, workload());
  assert.deepEqual(rejections(state, at("sick"), need), ["unhealthy"]);
  assert.deepEqual(rejections(state, at("leaving"), need), ["draining", "needs 256Mi memory, 128Mi free"]);
  assert.deepEqual(rejections(state, at("fine"), need), []);
  for (const n of nodes) {
    assert.equal(feasible(state, at(n.id), need, newCandidate()), rejections(state, at(n.id), need).length === 0);
  }
});
