import assert from "node:assert/strict";
import { parseServiceFile, type ServiceSpec } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import type { Entry } from "../raft/mod.ts";
import { type ControlCommand, ControlMachine, encodeCommand } from "./machine.ts";
import { checkFacts } from "./node_facts.ts";
import { readPlacements, readReplicaStates } from "./placement_store.ts";
import { checkReport } from "./replica_report.ts";
import { isPlaced, type NodeRecord, placeServices } from "./placements.ts";
import { Store } from "./store.ts";

const GiB = 2 ** 30;

const member = (id: string, zone: string, extra: Partial<NodeRecord> = {}): NodeRecord => ({
  id,
  address: `10.0.0.${id.slice(-1)}:6880`,
  drain: false,
  facts: {
    labels: { zone },
    capacity: { memory: 8 * GiB, cpuMillis: 4000 },
    gpus: [],
    runtimes: ["wasm"],
    proxy: `10.0.0.${id.slice(-1)}:80`,
  },
  ...extra,
});

const service = (name: string, extra = ""): ServiceSpec =>
  parseServiceFile(`[[service]]\nname = "${name}"\nmodule = "m.wasm"\n${extra}`, "s.toml", "p")[0];

const members = [member("n1", "z1"), member("n2", "z2"), member("n3", "z3")];

Deno.test("services are placed and spread over zones (jobs too; a Wasm service with no trigger is not); a redeploy keeps what runs", () => {
  const web = service("web", 'triggers = ["http:/web"]\nreplicas = 2');
  const one = service("one", 'triggers = ["http:/one"]');
  const job = service("job", 'triggers = ["cron:* * * * *"]');
  assert.equal(isPlaced(job), true, "the leader has the node that runs it run each firing");
  assert.equal(isPlaced(service("idle")), false, "a Wasm service with no trigger does nothing");
  const first = placeServices(members, {}, [web, one, job]);
  assert.deepEqual(Object.keys(first.changed).sort(), ["p/job", "p/one", "p/web"]);
  const web2 = first.changed["p/web"];
  assert.deepEqual(web2.map((p) => p.replica), [0, 1]);
  assert.equal(new Set(web2.map((p) => p.node)).size, 2, "two replicas, two zones");
  assert.equal(first.changed["p/one"].length, 1);
  // The same services again: nothing moves, nothing changes.
  const again = placeServices(members, first.changed, [web, one, job]);
  assert.deepEqual(again.changed, {});
  // Scaled to 3: one more replica, in the zone left; the two running stay where they are.
  const scaled = placeServices(members, first.changed, [service("web", 'triggers = ["http:/web"]\nreplicas = 3'), one]);
  assert.deepEqual(scaled.changed["p/web"].slice(0, 2), web2);
  assert.equal(new Set(scaled.changed["p/web"].map((p) => p.node)).size, 3);
  // Removed: its placements go.
  const removed = placeServices(members, first.changed, [web]);
  assert.deepEqual(removed.changed, { "p/job": [], "p/one": [] });
});

Deno.test("a server without facts, or drained, gets nothing new; a replica that fits nowhere names every node", () => {
  const pinned = service(
    "pinned",
    'triggers = ["http:/x"]\nreplicas = 2\n[service.placement]\nlabels = { zone = "z1" }',
  );
  const view = [member("n1", "z1"), member("n2", "z2", { drain: true }), { id: "n4", address: "a:1", drain: false }];
  const placed = placeServices(view, {}, [service("s", 'triggers = ["http:/s"]\nreplicas = 2')]);
  assert.deepEqual(placed.changed["p/s"].map((p) => p.node), ["n1", "n1"]);
  assert.throws(() => placeServices([member("n2", "z2"), member("n3", "z3")], {}, [pinned]), (e) => {
    assert.ok(e instanceof OrcaError);
    assert.equal(e.code, "conflict");
    assert.match(e.message, /p\/pinned replica 0: .*n2.*zone.*n3.*zone/);
    assert.match(e.hint ?? "", /--plan/);
    return true;
  });
  // Two replicas of 3 GiB fit a node of 8 GiB, a third does not: on one node, the third fails for its memory.
  const big = service("big", 'triggers = ["http:/h"]\nreplicas = 3\n[service.resources]\nmemory = "3Gi"');
  const two = service("big", 'triggers = ["http:/h"]\nreplicas = 2\n[service.resources]\nmemory = "3Gi"');
  assert.equal(placeServices([member("n1", "z1")], {}, [two]).changed["p/big"].length, 2);
  assert.throws(() => placeServices([member("n1", "z1")], {}, [big]), /replica 2: .*memory/);
});

Deno.test("the state machine stores a deploy's placements, clears a removed service's, and snapshots carry them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "orca-placements-" });
  const store = new Store(`${dir}/a.db`);
  const machine = new ControlMachine(store);
  const entry = (index: number, command: ControlCommand): Entry => ({
    index,
    term: 1,
    kind: "normal",
    data: encodeCommand(command),
  });
  const summary = { created: [], updated: [], removed: [], unchanged: [] };
  const web = service("web", 'triggers = ["http:/web"]\nreplicas = 2');
  const placements = {
    "p/web": [{ replica: 0, node: "n1", runtime: "wasm" as const }, {
      replica: 1,
      node: "n2",
      runtime: "wasm" as const,
    }],
  };
  const upserts = [{ spec: web, version: 1, updatedAt: 1 }];
  machine.applyAll([entry(1, { type: "deploy", at: 1, upserts, removals: [], summary, placements })]);
  assert.deepEqual(readPlacements((t) => store.sql(t)), placements);
  const snapshot = machine.snapshot();
  const other = new Store(`${dir}/b.db`);
  new ControlMachine(other).restore(snapshot);
  assert.deepEqual(readPlacements((t) => other.sql(t)), placements, "a restored member knows where replicas run");
  machine.applyAll([entry(2, {
    type: "deploy",
    at: 2,
    upserts: [],
    removals: [{ project: "p", name: "web" }],
    summary,
  })]);
  assert.deepEqual(readPlacements((t) => store.sql(t)), {});
  store.close();
  other.close();
});

Deno.test("facts sent to the API: runtimes and the proxy address are checked, naming the field", () => {
  const base = { labels: {}, capacity: { memory: 1, cpuMillis: 1 }, gpus: [] };
  assert.deepEqual(checkFacts({ ...base, runtimes: ["wasm", "container"], proxy: "10.0.0.1:80" }).runtimes, [
    "wasm",
    "container",
  ]);
  assert.equal(checkFacts({ ...base, proxy: "[::1]:8080" }).proxy, "[::1]:8080");
  assert.equal(checkFacts(base).runtimes, undefined, "absent: kept absent (Wasm only)");
  for (const runtimes of ["wasm", ["vm"], ["wasm", "wasm", "wasm"], [1]]) {
    assert.throws(() => checkFacts({ ...base, runtimes }), /runtimes must be a list/);
  }
  for (const proxy of ["10.0.0.1", "a b:80", "x:80/evil", 80, "h:99999999"]) {
    assert.throws(() => checkFacts({ ...base, proxy }), /proxy must be host:port/);
  }
});

Deno.test("a node that stopped answering loses its replicas to healthy ones and gets no new one", () => {
  const web = service("web", 'triggers = ["http:/web"]\nreplicas = 2');
  const first = placeServices(members, {}, [web]);
  const lost = first.changed["p/web"][0].node;
  const healthy = (node: string) => node !== lost;
  const moved = placeServices(members, first.changed, [web], { healthy, partial: true });
  const now = moved.changed["p/web"];
  assert.equal(now.length, 2);
  assert.ok(!now.some((p) => p.node === lost), JSON.stringify(now));
  assert.deepEqual(now.find((p) => p.replica === 1), first.changed["p/web"][1], "the healthy replica stays put");
  // Nowhere to go (one node, lost): partial leaves it where it is and says why; a deploy fails.
  const alone = [member("n1", "z1")];
  const placed = placeServices(alone, {}, [web]).changed;
  const stuck = placeServices(alone, placed, [web], { healthy: () => false, partial: true });
  assert.deepEqual(stuck.changed, {});
  assert.equal(stuck.plan.unplaced.length, 2);
  assert.throws(() => placeServices(alone, placed, [web], { healthy: () => false }), /fit on no node/);
});

Deno.test("a node's report of its workloads: checked field by field, applied, and carried by snapshots", async () => {
  const ok = checkReport({ states: [{ service: "p/web", version: 2, state: "ready" }], gone: ["p/old"] });
  assert.deepEqual(ok, { states: [{ service: "p/web", version: 2, state: "ready" }], gone: ["p/old"] });
  const cases: [unknown, RegExp][] = [
    [[], /report must be an object/],
    [{ states: {}, gone: [] }, /states must be a list/],
    [{ states: [], gone: "x" }, /gone must be a list/],
    [{ states: [{ service: "../etc", version: 1, state: "ready" }], gone: [] }, /states\[0\]\.service/],
    [{ states: [{ service: "p/w", version: 0, state: "ready" }], gone: [] }, /states\[0\]\.version/],
    [{ states: [{ service: "p/w", version: 1, state: "great" }], gone: [] }, /states\[0\]\.state/],
    [{ states: [{ service: "p/w", version: 1, state: "failed", message: "x".repeat(1001) }], gone: [] }, /message/],
    [{ states: [], gone: [1] }, /gone\[0\]/],
    [{ states: [], gone: Array(10_001).fill("p/w") }, /at most 10000/],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => checkReport(body), message, JSON.stringify(body).slice(0, 80));
  }

  const dir = await Deno.makeTempDir({ prefix: "orca-states-" });
  const store = new Store(`${dir}/a.db`);
  const machine = new ControlMachine(store);
  const apply = (index: number, command: ControlCommand) =>
    machine.applyAll([{ index, term: 1, kind: "normal", data: encodeCommand(command) }]);
  apply(1, {
    type: "replica-states",
    node: "n1",
    at: 5,
    states: [{ service: "p/web", version: 2, state: "ready" }, {
      service: "p/bad",
      version: 1,
      state: "failed",
      message: "no module",
    }],
    gone: [],
  });
  const states = readReplicaStates((t) => store.sql(t));
  assert.deepEqual(states["p/web"], { n1: { version: 2, state: "ready", at: 5 } });
  assert.deepEqual(states["p/bad"].n1.message, "no module");
  const other = new Store(`${dir}/b.db`);
  new ControlMachine(other).restore(machine.snapshot());
  assert.deepEqual(readReplicaStates((t) => other.sql(t)), states);
  apply(2, { type: "replica-states", node: "n1", at: 6, states: [], gone: ["p/bad"] });
  assert.deepEqual(Object.keys(readReplicaStates((t) => store.sql(t))), ["p/web"]);
  store.close();
  other.close();
});

Deno.test("a drained node's replicas leave one at a time per service, each once its successor is ready", () => {
  const web = service("web", 'triggers = ["http:/web"]\nreplicas = 2');
  const api = service("api", 'triggers = ["http:/api"]');
  type Now = Record<string, { replica: number; node: string; runtime: "wasm" }[]>;
  let now: Now = {
    "p/web": [{ replica: 0, node: "n2", runtime: "wasm" }, { replica: 1, node: "n2", runtime: "wasm" }],
    "p/api": [{ replica: 0, node: "n2", runtime: "wasm" }],
  };
  const drained = [member("n1", "z1"), member("n2", "z2", { drain: true }), member("n3", "z3")];
  // Ready: what ran before the drain; a successor only once it says so.
  const readyPairs = new Set(Object.entries(now).flatMap(([s, list]) => list.map((p) => `${s}@${p.node}`)));
  const ready = (service: string, node: string) => readyPairs.has(`${service}@${node}`);
  const step = () => {
    const changed = placeServices(drained, now, [web, api], { partial: true, ready }).changed;
    now = { ...now, ...changed } as Now;
    return changed;
  };
  const on = (service: string, node: string) => now[service].filter((p) => p.node === node).length;
  // First: each service gets one successor; nothing stops yet.
  const first = step();
  assert.deepEqual(Object.keys(first).sort(), ["p/api", "p/web"]);
  assert.equal(now["p/web"].length, 3, "one of web's two replicas moves at a time");
  assert.equal(on("p/web", "n2"), 2);
  assert.equal(now["p/api"].length, 2);
  // Successors not ready: nothing changes.
  assert.deepEqual(step(), {});
  // Ready: the old ones stop (one of web's), and web's second one moves next, the same way.
  for (const [s, list] of Object.entries(now)) for (const p of list) readyPairs.add(`${s}@${p.node}`);
  step();
  assert.equal(on("p/api", "n2"), 0);
  assert.equal(on("p/web", "n2"), 1);
  assert.equal(now["p/web"].length, 2);
  for (let round = 0; round < 4 && on("p/web", "n2") > 0; round++) {
    step();
    for (const p of now["p/web"]) if (p.node !== "n2") readyPairs.add(`p/web@${p.node}`);
  }
  assert.equal(on("p/web", "n2"), 0);
  assert.equal(now["p/web"].length, 2);
  assert.equal(new Set(now["p/web"].map((p) => p.replica)).size, 2, "replica numbers stay unique");
  // A deploy (no `ready`) moves at once.
  const atOnce = placeServices(drained, { "p/api": [{ replica: 0, node: "n2", runtime: "wasm" }] }, [api]).changed;
  assert.ok(!Object.values(atOnce).flat().some((p) => p.node === "n2"));
});

Deno.test("a deploy fails only for its own services: one that fits nowhere and is not touched stays as it is", () => {
  const alone = [member("n1", "z1")];
  const stuck = service(
    "stuck",
    'triggers = ["http:/stuck"]\nreplicas = 2\n[service.placement]\nlabels = { zone = "z9" }',
  );
  const web = service("web", 'triggers = ["http:/web"]');
  const out = placeServices(alone, {}, [stuck, web], { mustPlace: new Set(["p/web"]) });
  assert.deepEqual(out.changed["p/web"].map((p) => p.node), ["n1"]);
  assert.equal(out.changed["p/stuck"], undefined, "left unplaced, as it was");
  assert.equal(out.plan.unplaced.length, 2);
  assert.throws(() => placeServices(alone, {}, [stuck, web], { mustPlace: new Set(["p/stuck"]) }), /fit on no node/);
});
