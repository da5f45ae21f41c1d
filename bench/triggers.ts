/**
 * Trigger benchmarks: cron firing delay over N firings of a per-second job,
 * durable queue throughput (published and consumed) and end-to-end latency.
 * A real server process, a real C consumer, the real API.
 */

import { orca, startServer, writeProject } from "../tests/harness.ts";

const root = new URL("..", import.meta.url).pathname;
const guests = `${root}tests/fixtures/guests`;

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export async function benchTriggers(opts: { firings: number; messages: number }): Promise<string[]> {
  const server = await startServer();
  const auth = { authorization: `Bearer ${server.token}` };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.apiUrl}/api/v1${path}`, { ...init, headers: { ...auth, ...init.headers } });
  const lines: string[] = [];
  try {
    const sink = `[[service]]\nname = "sink"\nmodule = "${guests}/consumer.wasm"\ntriggers = ["queue:bench"]\n`;
    const fast =
      `[[service]]\nname = "fast"\nmodule = "${guests}/counter.handler.wasm"\ntriggers = ["queue:bench-fast"]\n`;
    const dir = await writeProject({ bench: sink });

    const batch = 100;
    const publish = async (topic: string) => {
      const t0 = performance.now();
      for (let i = 0; i < opts.messages; i += batch) {
        const body = Array.from({ length: Math.min(batch, opts.messages - i) }, (_, j) => `m${i + j}`).join("\n");
        const res = await api(`/queues/${topic}`, {
          method: "POST",
          body,
          headers: { "content-type": "application/x-ndjson" },
        });
        if (res.status !== 201) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
        await res.body?.cancel();
      }
      return performance.now() - t0;
    };
    const pending = async (topic: string) => {
      const { topics } = await (await api("/queues")).json();
      return topics.find((t: { topic: string }) => t.topic === topic)?.consumers[0]?.pending ?? Infinity;
    };
    /** Deploys `toml` as the bench project, then times until `topic` is drained. */
    const consume = async (toml: string, topic: string) => {
      await Deno.writeTextFile(`${dir}/services/bench/service.toml`, toml);
      const t0 = performance.now();
      const deployed = await orca(server, "deploy", dir);
      if (deployed.code !== 0) throw new Error(deployed.stderr);
      while (await pending(topic) > 0) await new Promise((r) => setTimeout(r, 10));
      return performance.now() - t0;
    };

    // Publish throughput, alone: batches of 100 (one durable transaction each) to topics with no consumer yet.
    const published = await publish("bench");
    await publish("bench-fast");
    const rate = (ms: number) => (opts.messages / ms * 1000).toFixed(0);
    const commandMs = await consume(sink, "bench");
    const handlerMs = await consume(sink + fast, "bench-fast");
    lines.push(
      `queue: ${opts.messages} messages published at ${rate(published)} msgs/s (batches of ${batch}, durable)`,
    );
    lines.push(
      `queue: consumed at ${rate(commandMs)} msgs/s by a WASI command (a fresh instance per message), ` +
        `${rate(handlerMs)} msgs/s by an orca:jobs/handler (instance reused); acks group-committed; deploy included`,
    );

    // End-to-end latency: one message at a time, publish -> the consumer's log line.
    const latencies: number[] = [];
    for (let i = 0; i < 50; i++) {
      const sent = Date.now();
      const res = await api("/queues/bench", { method: "POST", body: `lat${i}` });
      await res.body?.cancel();
      for (;;) {
        const logs = await (await api(`/services/bench/sink/logs?tail=5`)).text();
        const hit = logs.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) =>
          l.text.startsWith(`got lat${i} `)
        );
        if (hit) {
          latencies.push(hit.at - sent);
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    lines.push(
      `queue: publish -> consumed latency p50 ${percentile(latencies, 0.5)} ms, p99 ${
        percentile(latencies, 0.99)
      } ms (50 single messages)`,
    );

    // Cron, measured on a quiet server: deploy the per-second job now, read the start delays of its firings.
    await Deno.writeTextFile(
      `${dir}/services/bench/service.toml`,
      sink + fast + `[[service]]\nname = "tick"\nmodule = "${guests}/tick.wasm"\ntriggers = ["cron:* * * * * *"]\n`,
    );
    const again = await orca(server, "deploy", dir);
    if (again.code !== 0) throw new Error(again.stderr);
    let runs: { scheduledAt: number; startedAt: number; status: string }[] = [];
    while (runs.length < opts.firings) {
      await new Promise((r) => setTimeout(r, 1000));
      runs = (await (await api(`/services/bench/tick/runs?limit=${opts.firings}`)).json()).runs;
    }
    const delays = runs.map((r) => r.startedAt - r.scheduledAt);
    lines.push(
      `cron: ${runs.length} firings of a per-second job, firing delay p50 ${percentile(delays, 0.5)} ms, p99 ${
        percentile(delays, 0.99)
      } ms, ` +
        `max ${Math.max(...delays)} ms (${runs.filter((r) => r.status === "ok").length} ok)`,
    );
  } finally {
    await server.stop();
  }
  return lines;
}

if (import.meta.main) {
  const firings = Number(Deno.env.get("BENCH_CRON_FIRINGS") ?? 60);
  const messages = Number(Deno.env.get("BENCH_MESSAGES") ?? 5000);
  for (const line of await benchTriggers({ firings, messages })) console.log(line);
}
