/**
 * The API routes that act on the replicas this node runs, shared by servers
 * and worker nodes: a service's logs (`-f` too), stats and exec, and the
 * leader's request to start a deploy's new versions ahead of its commit.
 */

import type { Hono } from "hono";
import { OrcaError } from "../errors.ts";
import { type BodyLimits, readJson, SMALL_JSON_BYTES } from "./body.ts";
import { validatePrepare } from "./deploy_request.ts";
import type { ControlPlane } from "./plane.ts";
import { fromBase64, type JobInput, type LogLine } from "../runtime/mod.ts";

export function replicaRoutes(app: Hono, plane: ControlPlane, limits: BodyLimits): void {
  app.get("/services/:project/:name/logs", (c) => {
    const key = plane.resolve(`${c.req.param("project")}/${c.req.param("name")}`);
    const follow = flagOf(c.req.query("follow"), "follow");
    const tailText = c.req.query("tail");
    const tail = tailText === undefined ? undefined : wholeNumber(tailText, "tail", 0, 1_000_000);
    return ndjson((signal) => plane.ops.logs(key, { follow, ...(tail !== undefined && { tail }), signal }));
  });

  // This node's access log, of every service or one (`orca logs --access [service] [-f]`).
  app.get("/access-log", (c) => {
    const service = c.req.query("service");
    const key = service === undefined ? undefined : plane.resolve(service);
    const follow = flagOf(c.req.query("follow"), "follow");
    const tailText = c.req.query("tail");
    const tail = tailText === undefined ? undefined : wholeNumber(tailText, "tail", 0, 1_000_000);
    return ndjson((signal) => plane.access.read(key, { follow, ...(tail !== undefined && { tail }), signal }));
  });

  app.get("/services/:project/:name/stats", async (c) => c.json(await plane.ops.stats(serviceKey(c.req.param()))));

  app.post("/services/:project/:name/exec", async (c) => {
    const body = await readJson(c.req.raw, SMALL_JSON_BYTES, 'exec request {"cmd": ["program", "arg"]}');
    const cmd = typeof body === "object" && body !== null ? (body as { cmd?: unknown }).cmd : undefined;
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((x) => typeof x !== "string")) {
      throw new OrcaError("invalid", "cmd must be a non-empty list of strings");
    }
    const r = await plane.ops.exec(serviceKey(c.req.param()), cmd as string[]);
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return c.json({ exitCode: r.exitCode, stdout: text(r.stdout), stderr: text(r.stderr) });
  });

  // The leader has the node that runs a service run one of its jobs (a cron firing, a message, an event).
  app.post("/services/:project/:name/jobs", async (c) => {
    const input = checkJobInput(await readJson(c.req.raw, limits.deploy, "job"));
    return c.json(await plane.ops.runJob(plane.resolve(serviceKey(c.req.param())), input));
  });

  // The leader starts a deploy's new versions here ahead of its commit (this server's own: never forwarded).
  app.post("/cluster/prepare", async (c) => {
    const services = validatePrepare(await readJson(c.req.raw, limits.deploy, "prepare request"));
    await plane.prepare(services);
    return c.json({ prepared: services.length });
  });
}

/** The 404 and error answers of an API (an OrcaError as it is; anything else a 500, told to `onError`). */
export function answerErrors(app: Hono, onError?: (err: unknown) => void): void {
  app.notFound(() => {
    const err = new OrcaError("not_found", "no such API route", {
      hint: "see the README for the API routes under /api/v1",
    });
    return err.toResponse();
  });

  app.onError((err) => {
    if (err instanceof OrcaError) return err.toResponse();
    onError?.(err);
    return Response.json(new OrcaError("internal", "internal error; the server log has details").toJSON(), {
      status: 500,
    });
  });
}

/** A job as the leader sends it: `{env, stdin (base64), topic}`; an error names the field. */
function checkJobInput(body: unknown): JobInput {
  const { env, stdin, topic } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const entries = typeof env === "object" && env !== null && !Array.isArray(env) ? Object.entries(env) : undefined;
  if (
    !entries || entries.length > 64 ||
    entries.some(([k, v]) => !/^[A-Z_][A-Z0-9_]{0,63}$/.test(k) || typeof v !== "string" || v.length > 4096)
  ) {
    throw new OrcaError("invalid", "env must be an object of at most 64 NAME: string entries");
  }
  if (typeof stdin !== "string") throw new OrcaError("invalid", "stdin must be base64");
  if (topic !== undefined && (typeof topic !== "string" || topic.length > 256)) {
    throw new OrcaError("invalid", "topic must be a string of at most 256 characters");
  }
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(stdin);
  } catch {
    throw new OrcaError("invalid", "stdin must be base64");
  }
  return {
    env: Object.fromEntries(entries) as Record<string, string>,
    stdin: bytes,
    ...(topic !== undefined && { topic }),
  };
}

function serviceKey(p: { project: string; name: string }): string {
  return `${p.project}/${p.name}`;
}

/** A whole-number query parameter from `min` to `max`; an error names it. */
/** Log lines as NDJSON, ended (`signal`) when the client goes away. */
function ndjson(read: (signal: AbortSignal) => AsyncIterable<LogLine>): Response {
  const abort = new AbortController();
  const lines = read(abort.signal);
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        for await (const line of lines) controller.enqueue(encoder.encode(JSON.stringify(line) + "\n"));
      } finally {
        controller.close();
      }
    },
    cancel() {
      abort.abort();
    },
  });
  return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
}

export function wholeNumber(text: string, name: string, min: number, max: number): number {
  const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw new OrcaError("invalid", `query parameter ${name} must be a whole number from ${min} to ${max}`, {
      where: `${name}=${JSON.stringify(text).slice(0, 40)}`,
    });
  }
  return n;
}

/** A yes/no query parameter: absent, `1`/`true` or `0`/`false`. */
export function flagOf(text: string | undefined, name: string): boolean {
  if (text === undefined || text === "0" || text === "false") return false;
  if (text === "1" || text === "true" || text === "") return true;
  throw new OrcaError("invalid", `query parameter ${name} must be 1, true, 0 or false`, {
    where: `${name}=${JSON.stringify(text).slice(0, 40)}`,
  });
}
