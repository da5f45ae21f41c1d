/** cron, queue and event triggers end to end: a real server, real C guests, real restarts. */

import assert from "node:assert/strict";
import { guestsDir, orca, type ServerProcess, startServer, until, writeProject } from "./harness.ts";

async function logLines(server: ServerProcess, service: string): Promise<string[]> {
  const r = await orca(server, "logs", service);
  return r.stdout.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ \S+\s+/, ""));
}

Deno.test("a 6-field cron job runs every second and its runs are listed", async () => {
  const server = await startServer();
  const dir = await writeProject({
    jobs: `[[service]]\nname = "tick"\nmodule = "${guestsDir}/tick.wasm"\ntriggers = ["cron:* * * * * *"]\n`,
  });
  try {
    assert.equal((await orca(server, "deploy", dir)).code, 0);
    // A firing while the first run still starts its guest host is recorded as
    // skipped (runs never overlap); every run that did run must be on time.
    const runs = await until("two cron runs", async () => {
      const r = JSON.parse((await orca(server, "runs", "tick", "--json")).stdout)
        .filter((run: { status: string }) => run.status !== "skipped");
      return r.length >= 2 ? r : undefined;
    });
    for (const run of runs) {
      assert.equal(run.status, "ok");
      assert.equal(run.scheduledAt % 1000, 0);
      assert.ok(run.startedAt - run.scheduledAt < 1000, `late by ${run.startedAt - run.scheduledAt} ms`);
      assert.match(run.outputTail, new RegExp(`tick scheduled at ${new Date(run.scheduledAt).toISOString()} by cron`));
    }
    const table = await orca(server, "runs", "tick");
    assert.match(table.stdout, /SCHEDULED\s+DELAY\s+DURATION\s+RESULT/);
    const status = await orca(server, "status");
    assert.match(status.stdout, /NEXT RUN\s+LAST RUN/);
    assert.match(status.stdout, /tick .* ok/);
  } finally {
    await server.stop();
  }
});

Deno.test("queues: in order, retried, dead-lettered, and nothing lost across kill -9", async (t) => {
  const server = await startServer();
  const service = (name: string, topic: string) =>
    `[[service]]\nname = "${name}"\nmodule = "${guestsDir}/consumer.wasm"\ntriggers = ["queue:${topic}"]\n`;
  const dir = await writeProject({ q: service("worker", "orders") });
  let restarted: ServerProcess | undefined;
  try {
    await t.step("publish to a topic nobody consumes: accepted and kept", async () => {
      const r = await orca(server, "queue", "publish", "later", "kept-1");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /published message \d+ to later/);
      const ls = await orca(server, "queue", "ls");
      assert.match(ls.stdout, /later\s+1\s+\(none\)/);
    });

    await t.step("concurrent publishes share log entries; each gets its own ids, in its order; none lost", async () => {
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${server.apiUrl}/api/v1${path}`, {
          ...init,
          headers: { authorization: `Bearer ${server.token}`, ...init.headers },
        });
      const applied = async () => {
        const { nodes } = await (await api("/nodes")).json();
        return nodes[0].applied as number;
      };
      const before = await applied();
      // 200 publishers at once, every other one with two messages in one request (NDJSON).
      const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        const pair = i % 2 === 1;
        const res = await api("/queues/burst", {
          method: "POST",
          headers: pair ? { "content-type": "application/x-ndjson" } : {},
          body: pair ? `p${i}-a\np${i}-b\n` : `p${i}`,
        });
        assert.equal(res.status, 201);
        return { pair, ids: (await res.json()).ids as number[] };
      }));
      for (const { pair, ids } of answers) {
        assert.equal(ids.length, pair ? 2 : 1);
        if (pair) assert.equal(ids[1], ids[0] + 1);
      }
      assert.equal(new Set(answers.flatMap((a) => a.ids)).size, 300);
      const { topics } = await (await api("/queues")).json();
      assert.equal(topics.find((q: { topic: string }) => q.topic === "burst")?.retained, 300);
      const entries = await applied() - before;
      assert.ok(entries < 200, `200 publishes took ${entries} log entries: not batched`);
    });

    await t.step("the consumer receives messages in order; a flaky one is retried", async () => {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      for (const m of ["one", "flaky-two", "three"]) {
        assert.equal((await orca(server, "queue", "publish", "orders", m)).code, 0);
      }
      const got = await until("three messages", async () => {
        const lines = (await logLines(server, "worker")).filter((l) => l.startsWith("got"));
        return lines.length >= 3 ? lines : undefined;
      });
      assert.deepEqual(got, [
        "got one from orders (attempt 1)",
        "got flaky-two from orders (attempt 3)",
        "got three from orders (attempt 1)",
      ]);
      const refused = (await logLines(server, "worker")).filter((l) => l.startsWith("refusing"));
      assert.deepEqual(refused, ["refusing flaky-two (attempt 1)", "refusing flaky-two (attempt 2)"]);
    });

    await t.step("a message that always fails ends in the dead-letter list", async () => {
      await orca(server, "queue", "publish", "orders", "poison-pill");
      await orca(server, "queue", "publish", "orders", "after-poison");
      const dead = await until("a dead letter", async () => {
        const d = JSON.parse((await orca(server, "queue", "ls", "--dead", "--json")).stdout);
        return d.length > 0 ? d : undefined;
      }, 30_000);
      assert.equal(dead[0].body, "poison-pill");
      assert.equal(dead[0].consumer, "q/worker");
      assert.equal(dead[0].attempts, 5);
      await until(
        "the message after it",
        async () =>
          (await logLines(server, "worker")).includes("got after-poison from orders (attempt 1)") || undefined,
      );
      const ls = await orca(server, "queue", "ls");
      assert.match(ls.stdout, /orders\s+0\s+q\/worker\s+0\s+0\s+1/);
    });

    await t.step("kill -9 with unacked messages, restart: they are delivered", async () => {
      // "stubborn" is refused four times (0.5 + 1 + 2 + 4 s of backoff): the kill after its first refusal lands while
      // it and the message behind it are unacknowledged, however slow the machine.
      await orca(server, "queue", "publish", "orders", "stubborn-crash");
      await orca(server, "queue", "publish", "orders", "after-crash");
      await until(
        "the first refusal",
        async () => (await logLines(server, "worker")).includes("refusing stubborn-crash (attempt 1)") || undefined,
      );
      await server.kill();
      restarted = await startServer(server.home);
      const got = await until("delivery after restart", async () => {
        const lines = (await logLines(restarted!, "worker")).filter((l) => l.startsWith("got"));
        return lines.length >= 2 ? lines : undefined;
      }, 60_000).catch(async (err) => {
        console.log("server output:", restarted!.output(), "worker logs:", await logLines(restarted!, "worker"));
        throw err;
      });
      assert.deepEqual(got, ["got stubborn-crash from orders (attempt 5)", "got after-crash from orders (attempt 1)"]);
      // Both acknowledged (once the topic runs dry): nothing pending, nothing retried, the one dead letter of before.
      await until(
        "the acks",
        async () =>
          /orders\s+0\s+q\/worker\s+0\s+0\s+1/.test((await orca(restarted!, "queue", "ls")).stdout) || undefined,
      );
    });
  } finally {
    await restarted?.stop();
    await server.stop();
  }
});

Deno.test("an event reaches every subscriber; bad schedules are refused", async (t) => {
  const server = await startServer();
  const sub = (name: string, pattern: string) =>
    `[[service]]\nname = "${name}"\nmodule = "${guestsDir}/consumer.wasm"\ntriggers = ["event:${pattern}"]\n`;
  const dir = await writeProject({
    ev: sub("audit", "orders.*") + sub("mailer", "orders.created") + sub("ops", "orca.service.**"),
  });
  try {
    await t.step("user events fan out to matching subscribers", async () => {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      const r = await orca(server, "events", "publish", "orders.created", '{"id":7}');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /delivered to ev\/audit, ev\/mailer/);
      for (const s of ["audit", "mailer"]) {
        await until(
          `${s} got it`,
          async () => (await logLines(server, s)).includes('event orders.created: {"id":7}') || undefined,
        );
      }
      const none = await orca(server, "events", "publish", "nobody.listens");
      assert.match(none.stdout, /no service subscribes to it \(dropped\)/);
    });

    await t.step("Orca publishes its own events", async () => {
      const more = await writeProject({
        other: `[[service]]\nname = "x"\nmodule = "${guestsDir}/version1.wasm"\ntriggers = ["http:/x"]\n`,
      });
      assert.equal((await orca(server, "deploy", more)).code, 0);
      await until(
        "orca.service.deployed",
        async () =>
          (await logLines(server, "ops")).some((l) =>
            l.startsWith("event orca.service.deployed:") && l.includes('"other/x"')
          ) || undefined,
      );
    });

    await t.step("an invalid cron expression names the field at fault", async () => {
      const bad = await writeProject({
        bad: `[[service]]\nname = "b"\nmodule = "${guestsDir}/tick.wasm"\ntriggers = ["cron:0 25 * * *"]\n`,
      });
      const r = await orca(server, "deploy", bad);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cron trigger: hour field: "25" is out of range 0-23 \(.*service\.toml:4\)/);
    });

    await t.step("a wasi:http component cannot take jobs", async () => {
      const bad = await writeProject({
        bad: `[[service]]\nname = "h"\nmodule = "${guestsDir}/egress.wasm"\ntriggers = ["queue:x"]\n`,
      });
      const r = await orca(server, "deploy", bad);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has cron\/queue\/event triggers but is a wasi:http handler/);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("an orca:jobs/handler keeps its instance between messages; an err result is retried", async () => {
  const server = await startServer();
  const dir = await writeProject({
    h: `[[service]]\nname = "counter"\nmodule = "${guestsDir}/counter.handler.wasm"\ntriggers = ["queue:work", "event:orders.*"]\n`,
  });
  try {
    const r = await orca(server, "deploy", dir);
    assert.equal(r.code, 0, r.stderr);
    for (const m of ["a", "b", "c"]) assert.equal((await orca(server, "queue", "publish", "work", m)).code, 0);
    await orca(server, "events", "publish", "orders.paid", "d");
    const lines = await until("four calls", async () => {
      const l = (await logLines(server, "counter")).filter((x) => x.startsWith("handled"));
      return l.length >= 4 ? l : undefined;
    });
    assert.deepEqual(lines.slice(0, 3), [
      "handled a from work (call 1)",
      "handled b from work (call 2)",
      "handled c from work (call 3)",
    ]);
    assert.equal(lines[3], "handled d from orders.paid (call 4)");
    await orca(server, "queue", "publish", "work", "poison");
    const retrying = await until("a refusal", async () => {
      const t = JSON.parse((await orca(server, "queue", "ls", "--json")).stdout).find((x: { topic: string }) =>
        x.topic === "work"
      );
      return t?.consumers[0]?.attempts > 0 ? t.consumers[0] : undefined;
    });
    assert.equal(retrying.lastError, "refused");
    const bad = await writeProject({
      h2: `[[service]]\nname = "x"\nmodule = "${guestsDir}/counter.handler.wasm"\ntriggers = ["http:/x"]\n`,
    });
    const refused = await orca(server, "deploy", bad);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is an orca:jobs\/handler, which cannot answer HTTP/);
  } finally {
    await server.stop();
  }
});
