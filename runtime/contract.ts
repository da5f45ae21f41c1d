/**
 * The contract every `Runtime` keeps, as one test suite that each
 * implementation runs against itself (runtime/wasm/contract_test.ts,
 * tests/containers_contract_test.ts): create -> start -> serve -> logs ->
 * exec -> stats -> stop -> remove.
 */

import assert from "node:assert/strict";
import { OrcaError } from "../errors.ts";
import type { HttpServing, Runtime, WorkloadSpec } from "./types.ts";

export interface ContractFixture {
  runtime: Runtime & HttpServing;
  /** A workload that answers HTTP on `/` with a body matching `body`, and runs `exec`. */
  spec: WorkloadSpec;
  body: RegExp;
  exec: { cmd: string[]; stdout: RegExp };
}

export async function runtimeContract(t: Deno.TestContext, f: ContractFixture): Promise<void> {
  const { runtime } = f;
  const handle = await runtime.create(f.spec);
  try {
    await t.step("create gives a handle of the runtime's kind, not yet running", async () => {
      assert.equal(handle.id, f.spec.id);
      assert.equal(handle.runtime, runtime.kind);
      assert.notEqual((await runtime.status(handle)).state, "running");
    });

    await t.step("start: running, with at least one instance", async () => {
      await runtime.start(handle);
      const st = await runtime.status(handle);
      assert.equal(st.state, "running");
      assert.ok(st.instances >= 1, JSON.stringify(st));
    });

    await t.step("serveHttp answers through the workload", async () => {
      const res = await runtime.serveHttp(handle, new Request("http://contract.test/"), { params: {}, route: "/*" });
      assert.equal(res.status, 200);
      assert.match(await res.text(), f.body);
    });

    await t.step("logs: what the workload wrote, with timestamps", async () => {
      const lines = [];
      for await (const line of runtime.logs(handle, { tail: 100 })) lines.push(line);
      assert.ok(lines.length > 0);
      assert.ok(lines.every((l) => Number.isFinite(l.at) && typeof l.text === "string"));
    });

    await t.step("exec runs a command and returns its exit code and output", async () => {
      const r = await runtime.exec(handle, f.exec.cmd);
      assert.equal(r.exitCode, 0, new TextDecoder().decode(r.stderr));
      assert.match(new TextDecoder().decode(r.stdout), f.exec.stdout);
    });

    await t.step("stats: memory in use and instances (pools refill in the background: wait for it)", async () => {
      let s = await runtime.stats(handle);
      for (const until = Date.now() + 5000; (s.instances < 1 || s.memoryBytes <= 0) && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 20));
        s = await runtime.stats(handle);
      }
      assert.ok(s.memoryBytes > 0, JSON.stringify(s));
      assert.ok(s.instances >= 1, JSON.stringify(s));
    });

    await t.step("stop: no longer running", async () => {
      await runtime.stop(handle, 1000);
      assert.notEqual((await runtime.status(handle)).state, "running");
    });
  } finally {
    await runtime.remove(handle);
  }
  await t.step("remove: the handle is gone", async () => {
    await assert.rejects(runtime.status(handle), (err) => err instanceof OrcaError && err.code === "not_found");
  });
}
