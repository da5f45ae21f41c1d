/**
 * Three real Raft server processes (raft/server.ts) with SQLite storage and
 * the WebSocket transport, their peer traffic through TCP proxies. Under a
 * concurrent write load the leader is killed with SIGKILL and restarted, and
 * the next leader is cut off and healed. Half the reads go to a node chosen at
 * random (followers serve reads through the leader's read index). Then: no
 * acknowledged write is lost, every node holds the same state, and the
 * clients' history is linearizable.
 */

import assert from "node:assert/strict";
import { checkLinearizable, type Operation } from "./linearizability.ts";
import { _sleep } from "./kv_client.ts";
import { ProcessCluster } from "./process_cluster.ts";

/** Whether 127.0.0.2 can be bound here (Linux routes all of 127/8 to loopback; some systems do not). */
function loopbackAliases(): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.2", port: 0 }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrNotAvailable) return false;
    throw err;
  }
}

/** Polls until `f` gives something, or throws after `ms`. */
async function until<T>(what: string, f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await _sleep(20);
  }
}

interface Load {
  history: Operation[];
  /** Unique keys whose write was acknowledged, with the value written. */
  acked: Map<string, string>;
  stop(): Promise<void>;
}

/** `clients` clients, each with one operation at a time: unique writes, and puts and gets on a few shared keys. */
function startLoad(cluster: ProcessCluster, clients: number): Load {
  const history: Operation[] = [];
  const acked = new Map<string, string>();
  let running = true;
  const worker = async (client: string) => {
    let seq = 0;
    while (running) {
      const r = Math.random();
      const invoke = performance.now();
      const deadline = invoke + 6000;
      if (r < 0.4) {
        const key = `u/${client}/${++seq}`;
        const res = await cluster.client.put(key, `v${seq}`, deadline, { client, seq });
        if (res.ok) acked.set(key, `v${seq}`);
        continue;
      }
      const key = `r${Math.floor(Math.random() * 3)}`;
      if (r < 0.75) {
        const value = `${client}:${++seq}`;
        const op: Operation = { key, kind: "put", value, invoke };
        history.push(op);
        const res = await cluster.client.put(key, value, deadline, { client, seq });
        if (res.ok) op.response = performance.now();
      } else {
        const op: Operation = { key, kind: "get", invoke };
        history.push(op);
        const at = Math.random() < 0.5 ? cluster.ids[Math.floor(Math.random() * cluster.ids.length)] : undefined;
        const res = await cluster.client.get(key, deadline, at);
        if (res.ok) Object.assign(op, { output: res.value, response: performance.now() });
      }
    }
  };
  const workers = Array.from({ length: clients }, (_, i) => worker(`c${i + 1}`));
  return {
    history,
    acked,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

Deno.test({
  name: "three Raft processes lose no acknowledged write and stay linearizable through kill -9 and a partition",
  sanitizeResources: false, // fetch keeps connections to the servers pooled past the test
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "orca-raft-process-" });
    const cluster = await ProcessCluster.start({
      size: 3,
      dir,
      token: crypto.randomUUID(),
      proxies: true,
      distinctHosts: loopbackAliases(),
      tickMs: 20,
      snapshotEvery: 100,
    });
    let load: Load | undefined;
    try {
      const first = await until("a first leader", () => cluster.leader(), 10_000);
      load = startLoad(cluster, 6);
      await _sleep(1500);

      const killed = (await cluster.leader())?.id ?? first.id;
      const killedAt = performance.now();
      await cluster.kill(killed);
      const others = cluster.ids.filter((id) => id !== killed);
      const next = await until("a new leader after the kill", async () => {
        const l = await cluster.leader(others);
        return l && l.id !== killed ? l : undefined;
      }, 10_000);
      const electionMs = performance.now() - killedAt;
      await _sleep(500);
      await cluster.restart(killed);
      await _sleep(1000);

      const cut = (await cluster.leader())?.id ?? next.id;
      const cutAt = performance.now();
      cluster.partition(cut);
      const rest = cluster.ids.filter((id) => id !== cut);
      await until("a leader on the majority side", async () => {
        const l = await cluster.leader(rest);
        return l && l.id !== cut ? l : undefined;
      }, 10_000);
      const partitionElectionMs = performance.now() - cutAt;
      await _sleep(2000);
      cluster.heal();
      await _sleep(1500);
      await load.stop();

      // Every node ends up with the same state (the one cut off catching up, from a snapshot if need be).
      const converged = await until("the nodes to converge", async () => {
        const s = await Promise.all(cluster.ids.map((id) => cluster.status(id, true)));
        const same = s.every((x) => x && x.applied === s[0]!.applied && x.digest === s[0]!.digest);
        return same ? s : undefined;
      }, 45_000); // generous: CI runs other multi-process tests on the same two cores

      // Read everything back, from every node in turn: every acknowledged write is there.
      const deadline = performance.now() + 15_000;
      const keys = [...load.acked.keys()];
      for (let i = 0; i < keys.length; i += 32) {
        await Promise.all(
          keys.slice(i, i + 32).map(async (key, j) => {
            const got = await cluster.client.get(key, deadline, cluster.ids[(i + j) % cluster.ids.length]);
            assert.ok(got.ok, `read of ${key} timed out`);
            assert.equal(got.value, load!.acked.get(key), `acknowledged write ${key} lost`);
          }),
        );
      }
      for (const [i, key] of ["r0", "r1", "r2"].entries()) {
        const invoke = performance.now();
        const got = await cluster.client.get(key, deadline, cluster.ids[i]);
        assert.ok(got.ok);
        load.history.push({ key, kind: "get", output: got.value, invoke, response: performance.now() });
      }
      const verdict = checkLinearizable(load.history);
      assert.deepEqual(verdict, { ok: true }, "the history is linearizable");

      const cutStatus = converged[cluster.ids.indexOf(cut)]!;
      const done = load.history.filter((o) => o.response !== undefined).length;
      const after = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
      const followerReads = after.reduce((n, s) => n + Number(s?.followerReads ?? 0), 0);
      console.log(
        `raft process test: leader ${killed} killed -> ${next.id} leads after ${electionMs.toFixed(0)} ms; ` +
          `${cut} cut off -> new leader after ${partitionElectionMs.toFixed(0)} ms; ` +
          `${load.acked.size} unique writes acknowledged and read back, ${done}/${load.history.length} ` +
          `register ops answered, linearizable; ${cut} installed ${cutStatus.snapshotsInstalled} snapshot(s); ` +
          `${followerReads} reads served by followers`,
      );
      assert.ok(followerReads > 0, "followers served reads");
      assert.ok(electionMs < 3000, `a new leader took ${electionMs.toFixed(0)} ms after the kill`);
      assert.ok(load.acked.size > 50, `only ${load.acked.size} writes acknowledged`);
    } finally {
      await load?.stop();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
