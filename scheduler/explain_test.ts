import assert from "node:assert/strict";
import { explainPlan } from "./explain.ts";
import type { ClusterView, NodeView, WorkloadView } from "./types.ts";

const GiB = 2 ** 30;

const nodes: NodeView[] = ["node-1", "node-2", "node-3"].map((id, i) => ({
  id,
  zone: i < 2 ? "eu-1" : "us-1",
  labels: {},
  capacity: { memory: (i + 2) * GiB, cpuMillis: 4000 },
  gpus: [],
  runtimes: ["container"],
  images: [],
  healthy: id !== "node-3",
  draining: false,
}));

const api: WorkloadView = {
  id: "shop/api",
  project: "shop",
  replicas: 2,
  runtimes: ["container"],
  memory: 768 * 2 ** 20,
  cpuMillis: 500,
  placement: { labels: {} },
};
const view: ClusterView = { nodes, placements: [] };

Deno.test("explainPlan: a summary, the actions, then one table per replica with every node's verdict", () => {
  const big: WorkloadView = { ...api, id: "shop/db", replicas: 1, memory: 4 * GiB };
  const { text } = explainPlan(view, [api, big]);
  const lines = text.split("\n");
  assert.equal(lines[0], "plan: 2 to place, 0 to migrate, 0 to stop, 1 cannot be placed");
  assert.ok(lines.includes("  place shop/api#0 on node-1 (container)"), text);
  assert.ok(lines.includes("  place shop/api#1 on node-2 (container)"), text);
  assert.ok(lines.includes("  cannot place shop/db#0:"), text);
  assert.ok(lines.includes("    node-1: needs 4Gi memory, 2Gi free"), text);
  assert.ok(lines.includes("    node-3: unhealthy"), text);
  assert.ok(lines.includes("shop/db#0 (place) -> nowhere"), text);
  const header = lines.findIndex((l) => l.startsWith("  NODE"));
  assert.deepEqual(lines[header].trim().split(/ {2,}/), [
    "NODE",
    "VERDICT",
    "IN ZONE",
    "ON NODE",
    "FIT",
    "WASTE",
    "IMAGE",
    "LOCALITY",
    "RUNTIME",
    "GPU",
    "SCORE",
  ]);
  // The second replica: node-2, though node-1 fits better, because node-1 already runs one.
  const second = lines.slice(lines.indexOf("shop/api#1 (place) -> node-2"));
  assert.match(second[2], /^ {2}node-2 +chosen \(container\) +1 +0 /);
  assert.match(second[3], /^ {2}node-1 +feasible \(container\) +1 +1 /);
  assert.equal(second[4], "  node-3: unhealthy");
});

Deno.test("explainPlan: the --json shape is plain data with counts, every node and every score part", () => {
  const { json, plan } = explainPlan(view, [api]);
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
  assert.deepEqual(json.summary, { place: 2, migrate: 0, stop: 0, unplaced: 0, problems: 0 });
  assert.deepEqual(json.placements, plan.placements);
  const [first] = json.explanations["shop/api"];
  assert.equal(first.action, "place");
  assert.deepEqual(first.rejected, [{ node: "node-3", reasons: ["unhealthy"] }]);
  assert.deepEqual(first.scores.map((s) => s.node), ["node-1", "node-2"]);
  assert.deepEqual(Object.keys(first.scores[0].parts).sort(), [
    "fit",
    "gpu",
    "image",
    "locality",
    "nodeReplicas",
    "runtime",
    "total",
    "waste",
    "zoneReplicas",
  ]);
});

Deno.test("explainPlan: maxRows trims the text tables, never the JSON", () => {
  const { text, json } = explainPlan(view, [{ ...api, replicas: 1 }], { maxRows: 1 });
  assert.ok(text.includes("  ... 1 more feasible nodes"), text);
  assert.equal(json.explanations["shop/api"][0].scores.length, 2);
});

Deno.test("explainPlan: a satisfied cluster plans nothing and says so", () => {
  const first = explainPlan(view, [api]).plan;
  const { text, json } = explainPlan({ nodes, placements: first.placements }, [api]);
  assert.equal(text, "plan: 0 to place, 0 to migrate, 0 to stop, 0 cannot be placed");
  assert.deepEqual(json.explanations, {});
});
