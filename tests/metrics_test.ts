/**
 * Metrics end to end: a real server scraped on its API (with the token) and on `--metrics-listen` (without), while
 * real requests, connections, queue deliveries and dead letters happen; counters move by what was sent, and what a
 * client chooses (paths, hosts) never becomes a label.
 */

import assert from "node:assert/strict";
import { examplesDir, get, guestsDir, orca, removeContainers, startServer, until, writeProject } from "./harness.ts";

/** The samples of a scrape: `name{labels}` to value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

Deno.test("metrics: requests, latency, in flight, connections, workloads, triggers, queues and Raft move", async (t) => {
  const server = await startServer(undefined, {}, ["--metrics-listen", "127.0.0.1:0"]);
  const open = /metrics (http:\/\/\S+)/.exec(server.output())![1];
  const scrape = async () => {
    const res = await fetch(open);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return samples(await res.text());
  };
  const dir = await writeProject({
    web: `[[service]]\nname = "hello"\nmodule = "${examplesDir}/services/hello-c/hello.wasm"\n` +
      `triggers = ["http:/hello"]\n` +
      `[[service]]\nname = "slow"\nmodule = "${guestsDir}/sleep.wasm"\ntriggers = ["http:/slow"]\n`,
    box: `[[service]]\nname = "idle"\nimage = "orca-examples/busybox:1"\ncommand = ["/bin/sleep", "3600"]\n`,
    q: `[[service]]\nname = "worker"\nmodule = "${guestsDir}/consumer.wasm"\ntriggers = ["queue:orders"]\n`,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);

    await t.step("requests by service and status class, and their latency", async () => {
      const before = await scrape();
      const count = (m: Map<string, number>, key: string) => m.get(key) ?? 0;
      for (let i = 0; i < 20; i++) assert.equal((await get(`${server.httpUrl}/hello`)).status, 200);
      for (let i = 0; i < 5; i++) assert.equal((await get(`${server.httpUrl}/nope-${i}`)).status, 404);
      const after = await scrape();
      const ok = 'orca_http_requests_total{service="web/hello",code="2xx"}';
      const missed = 'orca_http_requests_total{service="-",code="4xx"}';
      assert.equal(count(after, ok) - count(before, ok), 20);
      assert.equal(count(after, missed) - count(before, missed), 5);
      const n = 'orca_http_request_duration_seconds_count{service="web/hello"}';
      assert.equal(count(after, n) - count(before, n), 20);
      assert.ok(count(after, 'orca_http_request_duration_seconds_bucket{le="+Inf",service="web/hello"}') >= 20);
      assert.ok(count(after, 'orca_http_request_duration_seconds_sum{service="web/hello"}') > 0);
    });

    await t.step("what a client chooses never becomes a label", async () => {
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`${server.httpUrl}/x${crypto.randomUUID()}`, { headers: { host: `h${i}.example` } });
        await r.body?.cancel();
      }
      const series = [...(await scrape()).keys()].filter((k) => k.startsWith("orca_http_requests_total"));
      assert.deepEqual(series.sort(), [
        'orca_http_requests_total{service="-",code="4xx"}',
        'orca_http_requests_total{service="web/hello",code="2xx"}',
      ]);
    });

    await t.step("in flight and open connections", async () => {
      const slow = fetch(`${server.httpUrl}/slow?ms=1500`);
      const conns = await Promise.all(
        [0, 1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(server.httpUrl).port) })),
      );
      try {
        const during = await until("a request in flight", async () => {
          const m = await scrape();
          return (m.get("orca_http_requests_in_flight") ?? 0) >= 1 ? m : undefined;
        });
        const port = new URL(server.httpUrl).port;
        assert.ok((during.get(`orca_proxy_connections{port="${port}"}`) ?? 0) >= 3);
        assert.match(await (await slow).text(), /slept \d+ ms/);
        await until(
          "none in flight",
          async () => (await scrape()).get("orca_http_requests_in_flight") === 0 || undefined,
        );
      } finally {
        for (const c of conns) c.close();
      }
    });

    await t.step("workloads: instances, instantiations, memory", async () => {
      const m = await scrape();
      assert.ok((m.get('orca_workload_instances{service="web/hello",runtime="wasm"}') ?? 0) >= 1);
      assert.ok((m.get('orca_wasm_instantiations{service="web/hello",runtime="wasm"}') ?? 0) >= 1);
      assert.ok(m.has('orca_workload_memory_bytes{service="web/hello",runtime="wasm"}'));
      assert.ok(m.has('orca_wasm_deadline_kills{service="web/slow",runtime="wasm"}'));
      assert.ok((m.get("process_resident_memory_bytes") ?? 0) > 10 << 20);
      assert.ok(m.has("orca_wasm_guest_host_restarts"));
      // A container's, from the engine's stats (a container just started may report no memory in its first sample).
      const c = await until("the container's memory", async () => {
        const m = await scrape();
        return (m.get('orca_workload_memory_bytes{service="box/idle",runtime="container"}') ?? 0) > 0 ? m : undefined;
      });
      assert.equal(c.get('orca_workload_instances{service="box/idle",runtime="container"}'), 1);
      assert.ok(c.has('orca_workload_cpu_percent{service="box/idle",runtime="container"}'));
    });

    await t.step("trigger runs by result, queue depth and dead letters", async () => {
      assert.equal((await orca(server, "queue", "publish", "orders", "poison-1")).code, 0);
      assert.equal((await orca(server, "queue", "publish", "orders", "fine-1")).code, 0);
      const m = await until("a dead letter and a delivery", async () => {
        const m = await scrape();
        const dead = m.get('orca_queue_dead_letters{topic="orders",consumer="q/worker"}');
        const ok = m.get('orca_trigger_runs_total{service="q/worker",trigger="queue",result="ok"}');
        return dead === 1 && ok === 1 ? m : undefined;
      }, 30_000);
      assert.equal(m.get('orca_trigger_runs_total{service="q/worker",trigger="queue",result="failed"}'), 5);
      assert.equal(m.get('orca_queue_pending_messages{topic="orders",consumer="q/worker"}'), 0);
    });

    await t.step("Raft: term, indexes, no lag, the leader", async () => {
      const m = await scrape();
      assert.equal(m.get("orca_raft_leader"), 1);
      assert.ok((m.get("orca_raft_term") ?? 0) >= 1);
      assert.ok((m.get("orca_raft_applied_index") ?? 0) > 0);
      assert.equal(m.get("orca_raft_applied_index"), m.get("orca_raft_commit_index"));
      assert.equal(m.get("orca_raft_apply_lag"), 0);
    });

    await t.step("the API's /metrics needs the token; the open listener serves GET /metrics only", async () => {
      const api = `${server.apiUrl}/api/v1/metrics`;
      const anonymous = await fetch(api);
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const authed = await fetch(api, { headers: { authorization: `Bearer ${server.token}` } });
      assert.equal(authed.status, 200);
      assert.ok(samples(await authed.text()).has("orca_raft_term"));
      const head = await fetch(open, { method: "HEAD" });
      assert.equal(head.status, 200);
      const post = await fetch(open, { method: "POST", body: "x" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
      const other = await fetch(open.replace(/\/metrics$/, "/api/v1/services"));
      assert.equal(other.status, 404);
      await other.body?.cancel();
    });
  } finally {
    await server.stop();
    // Orca's containers outlive their server by design (adopted at its next start): this test's go with it.
    await removeContainers(server.home);
  }
});

Deno.test("--metrics-listen that is not ADDR:PORT is a usage error", async () => {
  const r = await orca(undefined, "server", "--metrics-listen", "nonsense:port:x");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--metrics-listen must be ADDR:PORT/);
});
