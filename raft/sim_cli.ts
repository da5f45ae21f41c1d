/**
 * `deno task sim --seeds N [--seed S] [--steps K] [--nodes 5]`: runs the Raft
 * simulator over many seeds (or replays one) with every fault it knows
 * (raft/sim.ts `allFaults`), checking every safety invariant after every
 * step, liveness after healing, and that each seed's client history is
 * linearizable. A failing seed replays exactly with --seed.
 */

import { parseArgs } from "node:util";
import { allFaults, InvariantViolation, Simulation } from "./sim.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "500" },
    seed: { type: "string" },
    steps: { type: "string", default: "3000" },
    nodes: { type: "string", default: "5" },
  },
});
const steps = Number(values.steps);
const nodes = Number(values.nodes);
const seeds = values.seed !== undefined
  ? [Number(values.seed)]
  : Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
if (seeds.some((s) => !Number.isInteger(s)) || !Number.isInteger(steps) || !Number.isInteger(nodes) || nodes < 1) {
  console.error("usage: deno task sim [--seeds N | --seed S] [--steps K] [--nodes N]");
  Deno.exit(2);
}

const started = performance.now();
let failed = 0;
let operations = 0;
const totals: Record<string, number> = {};
for (const seed of seeds) {
  const sim = new Simulation(seed, { ...allFaults, nodes });
  try {
    for (let i = 0; i < steps; i++) sim.step();
    if (!sim.settle(20_000)) throw new InvariantViolation("no stable leader with everything applied after healing");
    sim.checkHistory();
    operations += sim.history.length;
    for (const [k, v] of Object.entries(sim.stats)) totals[k] = (totals[k] ?? 0) + v;
  } catch (err) {
    if (!(err instanceof InvariantViolation)) throw err;
    failed++;
    console.log(
      `seed ${seed}: ${err.message} (replay: deno task sim --seed ${seed} --steps ${steps} --nodes ${nodes})`,
    );
  }
}
const ms = performance.now() - started;
console.log(
  `${seeds.length - failed} passed, ${failed} failed (${seeds.length} seeds, ${operations} client operations checked, ${
    ms.toFixed(0)
  } ms)`,
);
console.log(`across the passing seeds: ${Object.entries(totals).map(([k, v]) => `${v} ${k}`).join(", ")}`);
Deno.exit(failed > 0 ? 1 : 0);
