/**
 * `deno task bench [suite...]`: every benchmark, or the suites named
 * (http, density, scheduler, cron, triggers, deploy, recovery, proxy, cluster, gitops). Each measures Orca side by side with a baseline
 * in the same run and prints ratios.
 */

import { Engine } from "../runtime/mod.ts";
import { benchCluster } from "./cluster.ts";
import { benchPlacement } from "./placement.ts";
import { benchRecovery } from "./recovery.ts";
import { benchDeadline } from "./deadline.ts";
import { benchDensity } from "./density.ts";
import { benchDeploy } from "./deploy.ts";
import { benchHttp } from "./http.ts";
import { benchInterrupt } from "./interrupt.ts";
import { benchScheduler } from "./scheduler.ts";
import { benchCron } from "./cron.ts";
import { benchTriggers } from "./triggers.ts";
import { benchProxy } from "./proxy.ts";
import { benchGitops } from "./gitops.ts";

const suites: Record<string, () => Promise<void>> = {
  async http() {
    await benchHttp();
    console.log(`\n${await benchInterrupt()}`);
    console.log(await benchDeadline());
  },
  // deno-lint-ignore require-await
  async scheduler() {
    console.log(`\nscheduler\n\n${benchScheduler().join("\n")}`);
  },
  // deno-lint-ignore require-await
  async cron() {
    console.log(`\ncron: orca vs croner\n\n${benchCron().join("\n")}`);
  },
  async density() {
    console.log(`\ndensity\n\n${(await benchDensity(Number(Deno.env.get("BENCH_SERVICES") ?? 1000))).join("\n")}`);
  },
  async triggers() {
    const lines = await benchTriggers({
      firings: Number(Deno.env.get("BENCH_CRON_FIRINGS") ?? 60),
      messages: Number(Deno.env.get("BENCH_MESSAGES") ?? 5000),
    });
    console.log(`\ntriggers\n\n${lines.join("\n")}`);
  },
  async cluster() {
    console.log(`\ncluster (a lone server vs 3 servers on 127.0.0.1-3)\n\n${(await benchCluster()).join("\n")}`);
    if (Deno.env.get("BENCH_LONE_ONLY")) return;
    console.log(`\nplacement (1 server and 4 workers on 127.0.0.1-5)\n\n${(await benchPlacement()).join("\n")}`);
  },
  async deploy() {
    if (!(await new Engine().ping())) {
      console.log("\ndeploy: skipped (no Docker engine; run sudo bash scripts/docker_engine.sh)");
      return;
    }
    console.log(`\ncontainers vs Wasm\n\n${(await benchDeploy(Number(Deno.env.get("BENCH_ROUNDS") ?? 5))).join("\n")}`);
  },
  async proxy() {
    if (!(await new Engine().ping())) {
      console.log("\nproxy: skipped (no Docker engine; run sudo bash scripts/docker_engine.sh)");
      return;
    }
    console.log(`\nproxy: orca vs nginx\n\n${(await benchProxy()).join("\n")}`);
  },
  async gitops() {
    console.log(`\ngitops\n\n${(await benchGitops(Number(Deno.env.get("BENCH_PUSHES") ?? 10))).join("\n")}`);
  },
  async recovery() {
    if (!(await new Engine().ping())) {
      console.log("\nrecovery: skipped (no Docker engine; run sudo bash scripts/docker_engine.sh)");
      return;
    }
    console.log(`\nrecovery\n\n${(await benchRecovery(Number(Deno.env.get("BENCH_ROUNDS") ?? 3))).join("\n")}`);
  },
};

const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(suites);
for (const name of chosen) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown bench suite "${name}"; choose from ${Object.keys(suites).join(", ")}`);
    Deno.exit(2);
  }
  await suite();
}
