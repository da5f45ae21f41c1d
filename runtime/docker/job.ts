/**
 * One run of a container service as a job: its command once, in a fresh
 * container on the project network (so a job reaches the project's databases
 * by alias), removed afterwards. The message is in ORCA_MESSAGE (UTF-8), or
 * ORCA_MESSAGE_BASE64 when it is not text.
 */

import type { JobInput, JobResult, WorkloadSpec } from "../types.ts";
import { demux, type Engine, engineMessage } from "./engine.ts";
import { createContainerBody, type HostFacts } from "./spec.ts";
import { mergeLogs, messageEnv } from "./util.ts";

export async function runContainerJob(
  engine: Engine,
  spec: WorkloadSpec,
  host: HostFacts,
  node: string,
  input: JobInput,
  /** Holds the container's id while it exists (the orphan sweep leaves those alone). */
  running: Set<string>,
): Promise<JobResult> {
  const s = spec.service;
  const started = performance.now();
  const env = { ...input.env, ...messageEnv(input.stdin) };
  const body = createContainerBody({ ...s, port: undefined, env: { ...s.env, ...env } }, spec.id, 0, host, node);
  body.HostConfig.RestartPolicy = { Name: "no" };
  body.Labels["orca.job"] = "true";
  let id: string | undefined;
  try {
    id = (await engine.request<{ Id: string }>("POST", "/containers/create", { body })).Id;
    running.add(id);
    await engine.request("POST", `/containers/${id}/start`);
    const { StatusCode } = await engine.request<{ StatusCode: number }>("POST", `/containers/${id}/wait`);
    const tail: string[] = [];
    const logs = await engine.stream("GET", `/containers/${id}/logs`, { query: { stdout: 1, stderr: 1, tail: 50 } });
    for await (const line of mergeLogs([demux(logs as AsyncIterable<Uint8Array>)])) tail.push(line.text);
    return { exitCode: StatusCode, outputTail: tail.join("\n").slice(-4096), durationMs: performance.now() - started };
  } catch (err) {
    return { exitCode: -1, outputTail: "", durationMs: performance.now() - started, error: engineMessage(err) };
  } finally {
    if (id) {
      await engine.request("DELETE", `/containers/${id}`, { query: { force: true } }).catch(() => {});
      running.delete(id);
    }
  }
}
