import assert from "node:assert/strict";
import { plan } from "./plan.ts";
import type { ClusterView, NodeView, WorkloadView } from "./types.ts";
import { checkInput, shown } from "./validate.ts";

const node: NodeView = {
  id: "n1",
  labels: {},
  capacity: { memory: 2 ** 30, cpuMillis: 1000 },
  gpus: [],
  runtimes: ["container"],
  images: [],
  healthy: true,
  draining: false,
};
const web: WorkloadView = {
  id: "p/web",
  project: "p",
  replicas: 1,
  runtimes: ["container"],
  memory: 2 ** 20,
  cpuMillis: 10,
  placement: { labels: {} },
};

Deno.test("shown: any value, even one String() throws on", () => {
  assert.equal(shown(-1), "-1");
  assert.equal(shown(NaN), "NaN");
  assert.equal(shown("vm"), '"vm"');
  assert.equal(shown([1]), "a list");
  assert.equal(shown({ toString: "" }), "an object");
  assert.equal(shown(1n), "a bigint");
});

Deno.test("checkInput: each bad node and workload is named with what is wrong", () => {
  const bad = [
    { ...node, id: "n2", gpus: [{ vendor: "nvidia", count: 1.5 }] },
    { ...node, id: "n3", reserved: { memory: -1, cpuMillis: 0 } },
    { ...node, id: "n4", zone: 7 },
    { ...node, id: "n5", runtimes: "container" },
  ] as unknown as NodeView[];
  const ws = [
    { ...web, id: "p/gpu", gpu: { vendor: "nvidia", count: 0 } },
    { ...web, id: "p/pin", placement: { node: 3, labels: {} } },
    { ...web, id: "p/cpu", cpuMillis: Infinity },
    { ...web, id: "p/many", replicas: 10_001 },
  ] as unknown as WorkloadView[];
  const input = checkInput({ nodes: [node, ...bad], placements: [] }, [web, ...ws]);
  assert.deepEqual(input.nodes.map((n) => n.id), ["n1"]);
  assert.deepEqual(input.workloads.map((w) => w.id), ["p/web"]);
  assert.deepEqual(input.problems.map((x) => x.reason), [
    "n2 is not used: each GPU group needs a vendor, a whole count and VRAM in MB",
    "n3 is not used: reserved must give memory, cpuMillis (and gpus per group) as numbers >= 0",
    "n4 is not used: name and zone must be strings",
    "n5 is not used: runtimes and images must be lists of strings",
    "p/gpu is not planned: gpu.count must be a whole number >= 1",
    "p/pin is not planned: placement.node must be a string",
    "p/cpu is not planned: cpuMillis must be a number >= 0, not Infinity",
    "p/many is not planned: replicas must be a whole number from 0 to 10000, not 10001",
  ]);
});

Deno.test("a skipped workload's replicas and those on an unusable node stay as they are", () => {
  const broken = { ...node, id: "n9", capacity: { memory: -1, cpuMillis: 1 } };
  const view: ClusterView = {
    nodes: [node, broken],
    placements: [
      { workload: "p/web", replica: 0, node: "n9", runtime: "container" },
      { workload: "p/odd", replica: 0, node: "n1", runtime: "container" },
    ],
  };
  const p = plan(view, [web, { ...web, id: "p/odd", replicas: -2 }]);
  assert.deepEqual([p.placements, p.migrations, p.stops, p.unplaced], [[], [], [], []]);
  assert.equal(p.problems.length, 2);
});
