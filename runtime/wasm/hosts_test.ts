/** Guest host processes: deadlines, the kill-and-replace backstop, and work spread over hosts. */

import assert from "node:assert/strict";
import type { LogLine, WorkloadHandle } from "../types.ts";
import type { WasmRuntime } from "./runtime.ts";
import { guests, setup } from "./test_util.ts";
import { healthyLoop as loopUntilStopped } from "../../tests/harness.ts";

const ctx = { params: {}, route: "/*" };

/** Calls the healthy service `h` back to back until stopped (tests/harness.ts). */
function healthyLoop(runtime: WasmRuntime, h: WorkloadHandle) {
  return loopUntilStopped(async () => {
    const res = await runtime.serveHttp(h, new Request("http://x/ok"), ctx);
    return { status: res.status, text: await res.text() };
  }, "version 1\n");
}

async function logText(runtime: WasmRuntime, h: WorkloadHandle): Promise<string> {
  const lines: LogLine[] = [];
  for await (const line of runtime.logs(h)) lines.push(line);
  return lines.map((l) => l.text).join("\n");
}

Deno.test("a spinning guest is trapped at its deadline inside its host; the host lives on", async () => {
  const { runtime, deploy, cleanup } = await setup({ workers: 2 });
  let stop: ReturnType<typeof healthyLoop> | undefined;
  try {
    const spin = await deploy(await Deno.readFile(guests.spin), { limits: { timeout_ms: 200 } });
    const ok = await deploy(await Deno.readFile(guests.version1));
    stop = healthyLoop(runtime, ok);
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const res = await runtime.serveHttp(spin, new Request("http://x/spin"), ctx);
      const took = performance.now() - started;
      assert.equal(res.status, 504);
      await res.body?.cancel();
      // Not before its deadline (how soon after it is measured by `deno task bench http`, on a quiet machine;
      // here the call may include loading the guest into a second host).
      assert.ok(took >= 190, `answered after ${took.toFixed(0)} ms`);
    }
    const seen = await stop();
    stop = undefined;
    assert.deepEqual(seen.failures, []);
    assert.ok(seen.ok > 0);
    assert.equal(runtime.hosts().restarts, 0, "the interrupt check stopped the guest: no host was killed");
    assert.equal((await runtime.stats(spin)).incidents, 0);
    assert.match(await logText(runtime, spin), /deadline exceeded: stopped after 200 ms/);
  } finally {
    await stop?.();
    await cleanup();
  }
});

Deno.test("a guest without deadline checks is stopped by killing its host; a new host takes over", async () => {
  const incidents: string[] = [];
  const { runtime, deploy, cleanup } = await setup({
    workers: 2,
    graceMs: 300,
    instrument: false,
    onIncident: (service, error) => incidents.push(`${service}: ${error}`),
  });
  let stop: ReturnType<typeof healthyLoop> | undefined;
  try {
    const spin = await deploy(await Deno.readFile(guests.spin), { limits: { timeout_ms: 200 } });
    const ok = await deploy(await Deno.readFile(guests.version1));
    assert.match(await logText(runtime, spin), /without deadline checks/);
    stop = healthyLoop(runtime, ok);
    const started = performance.now();
    const res = await runtime.serveHttp(spin, new Request("http://x/spin"), ctx);
    const took = performance.now() - started;
    assert.equal(res.status, 504);
    assert.match(await res.text(), /did not answer within its deadline/);
    assert.ok(took >= 490, `the host was killed after ${took.toFixed(0)} ms, before its deadline and grace`);
    const seen = await stop();
    stop = undefined;
    // The healthy service ran on the other host throughout, and on the replacement after.
    assert.deepEqual(seen.failures, []);
    assert.ok(seen.ok > 0);
    assert.equal(runtime.hosts().restarts, 1);
    assert.equal((await runtime.stats(spin)).incidents, 1);
    assert.match(await logText(runtime, spin), /incident: guest host \d stopped answering .* and was killed/);
    assert.equal(incidents.length, 1);
    assert.match(incidents[0], /^p\/svc\d: the guest host \d stopped answering/);
    // Every host answers again: the healthy service on both (two at once spreads them).
    const answers = await Promise.all(
      [1, 2, 3, 4].map(async () => (await runtime.serveHttp(ok, new Request("http://x/ok"), ctx)).text()),
    );
    assert.deepEqual(answers, Array(4).fill("version 1\n"));
  } finally {
    await stop?.();
    await cleanup();
  }
});

Deno.test("calls spread over the hosts: a busy host does not hold up the next call", async () => {
  const { runtime, deploy, cleanup } = await setup({ workers: 2 });
  try {
    const spin = await deploy(await Deno.readFile(guests.spin), { limits: { timeout_ms: 3000 } });
    const ok = await deploy(await Deno.readFile(guests.version1));
    const spinning = runtime.serveHttp(spin, new Request("http://x/spin"), ctx);
    // One host spins for 3 s; the other answers meanwhile.
    await new Promise((r) => setTimeout(r, 100));
    const answered = runtime.serveHttp(ok, new Request("http://x/ok"), ctx);
    const first = await Promise.race([spinning.then(() => "spin"), answered.then(() => "ok")]);
    assert.equal(first, "ok", "the healthy call waited for the spinning one");
    assert.equal(await (await answered).text(), "version 1\n");
    assert.equal((await spinning).status, 504);
  } finally {
    await cleanup();
  }
});

for (
  const [kind, guest, headers] of [
    ["WAGI", guests.echo, { "content-length": String(1024 * 1024) }],
    ["wasi:http", guests.jsstream, {}],
  ] as const
) {
  Deno.test(`a ${kind} guest waiting on a client that stopped sending is stopped at its deadline; its host lives on`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers: 1, graceMs: 500 });
    let stall!: ReadableStreamDefaultController<Uint8Array>;
    try {
      const echo = await deploy(await Deno.readFile(guest), { limits: { timeout_ms: 1000 } });
      const ok = await deploy(await Deno.readFile(guests.version1));
      // Both loaded into the host first (a busy machine takes a while to compile the JavaScript guest).
      await (await runtime.serveHttp(echo, new Request("http://x/"), ctx)).arrayBuffer();
      await (await runtime.serveHttp(ok, new Request("http://x/ok"), ctx)).arrayBuffer();
      // 128 KiB of the body, then nothing more (the connection stays open).
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          stall = controller;
          controller.enqueue(new Uint8Array(128 * 1024).fill(7));
        },
      });
      const request = new Request("http://x/", { method: "POST", body, headers, duplex: "half" } as RequestInit);
      const res = await runtime.serveHttp(echo, request, ctx);
      // The echo began streaming; it breaks off with the deadline, not with a complete-looking body.
      assert.equal(res.status, 200);
      await assert.rejects(() => res.arrayBuffer(), /deadline exceeded/);
      // Well past the deadline and grace: the host was not killed, and answers.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(runtime.hosts().restarts, 0);
      assert.equal(await (await runtime.serveHttp(ok, new Request("http://x/ok"), ctx)).text(), "version 1\n");
      assert.equal((await runtime.stats(echo)).incidents, 0);
    } finally {
      try {
        stall?.close();
      } catch {
        // the runtime cancelled it at the deadline
      }
      await cleanup();
    }
  });
}

for (const [kind, guest, query] of [["C", guests.sleep, "ms"], ["JavaScript", guests.jsstream, "sleep"]] as const) {
  Deno.test(`a sleeping ${kind} guest wakes at its deadline and is stopped there; its host lives on`, async () => {
    const { runtime, deploy, cleanup } = await setup({ workers: 1, graceMs: 500 });
    try {
      const sleeper = await deploy(await Deno.readFile(guest), { limits: { timeout_ms: 1000 } });
      // A short sleep is a sleep (this also loads the guest into the host).
      const short = await (await runtime.serveHttp(sleeper, new Request(`http://x/?${query}=50`), ctx)).text();
      const slept = Number(/slept (\d+) ms/.exec(short)?.[1]);
      assert.ok(slept >= 45 && slept < 900, short);
      // A minute-long one ends at the deadline.
      const started = performance.now();
      const res = await runtime.serveHttp(sleeper, new Request(`http://x/?${query}=60000`), ctx);
      const took = performance.now() - started;
      assert.equal(res.status, 504);
      await res.body?.cancel();
      assert.ok(took < 1400, `answered after ${took.toFixed(0)} ms (deadline 1000 ms, host kill at 1500 ms)`);
      assert.equal(runtime.hosts().restarts, 0);
    } finally {
      await cleanup();
    }
  });
}

Deno.test("a host's socket is in a folder of its own, gone once the host connected: nobody else can connect", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "orca-hosts-test-" });
  const { runtime, deploy, cleanup } = await setup({ workers: 2, socketParent: tmp });
  try {
    const h = await deploy(await Deno.readFile(guests.version1));
    const res = await runtime.serveHttp(h, new Request("http://x/"), ctx);
    assert.equal(await res.text(), "version 1\n");
    assert.equal(runtime.hosts().restarts, 0);
    const names = () => [...Deno.readDirSync(tmp)].map((e) => e.name);
    // Both hosts started with the pool; the one that did not serve may still be connecting on a busy machine.
    const sockets = () => names().filter((n) => n.startsWith("orca-host-"));
    for (let i = 0; i < 300 && sockets().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(sockets(), [], "no socket (or its folder) is left behind once the hosts connected");
  } finally {
    await cleanup();
    await Deno.remove(tmp, { recursive: true });
  }
});
