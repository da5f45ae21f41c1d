/**
 * The HTTP side of `orca gitops` (seed 004's status API, port 9100 unless
 * told): `GET|POST /status` (the sync state as JSON), `GET /healthz` (200
 * while the last poll worked and the branch's commit runs, else 503), and
 * `POST /api/v1/webhooks/git`, a push webhook (GitHub, Gitea, Gogs) that
 * syncs at once. The webhook needs a signature under the shared secret; the
 * status needs nothing and tells nothing secret (the repository's URL is
 * shown without credentials).
 */

import { readBody } from "../control/body.ts";
import { OrcaError } from "../errors.ts";
import type { LoopStatus, ReconcileLoop, SyncOutcome } from "./loop.ts";
import { verifySignature } from "./signature.ts";

/** The largest webhook body read (GitHub caps payloads at 25 MB; a push is far smaller). */
export const MAX_WEBHOOK_BYTES = 5 * 1024 * 1024;

export interface StatusInfo {
  repository: string;
  branch: string;
  path: string;
  intervalMs: number;
}

export interface StatusServerOptions {
  loop: ReconcileLoop;
  info: StatusInfo;
  /** The webhook's shared secret; without one the webhook route answers 404. */
  webhookSecret?: Uint8Array;
  hostname: string;
  port: number;
  onListen?: (addr: Deno.NetAddr) => void;
  signal?: AbortSignal;
}

/** The status document: what `/status` answers and `orca gitops` logs at start. */
export function statusDocument(info: StatusInfo, s: LoopStatus): Record<string, unknown> {
  const iso = (ms?: number) => ms === undefined ? null : new Date(ms).toISOString();
  return {
    repository: info.repository,
    branch: info.branch,
    path: info.path,
    interval_ms: info.intervalMs,
    head: s.head ?? null,
    applied: s.applied ?? null,
    last_sync: s.lastSync
      ? {
        at: iso(s.lastSync.at),
        result: s.lastSync.result,
        commit: s.lastSync.commit ?? null,
        duration_ms: s.lastSync.durationMs,
        trigger: s.lastSync.trigger,
        ...(s.lastSync.changes && { changes: s.lastSync.changes }),
      }
      : null,
    last_error: s.lastError ? { ...s.lastError, at: iso(s.lastError.at) } : null,
    consecutive_failures: s.consecutiveFailures,
    next_poll: iso(s.nextPollAt),
    syncing: s.syncing,
    healthy: s.healthy,
  };
}

export function serveStatus(opts: StatusServerOptions): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    signal: opts.signal,
    onListen: (addr) => opts.onListen?.(addr),
    onError: (err) => new OrcaError("internal", String(err)).toResponse(),
  }, (req) => handle(opts, req).catch((err) => errorResponse(err)));
}

async function handle(opts: StatusServerOptions, req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (path === "/status") {
    if (req.method !== "GET" && req.method !== "POST") return notAllowed("GET, POST");
    await req.body?.cancel();
    return Response.json(statusDocument(opts.info, opts.loop.status()));
  }
  if (path === "/healthz") {
    if (req.method !== "GET") return notAllowed("GET");
    const s = opts.loop.status();
    return Response.json({ ok: s.healthy, ...(s.lastError && { error: s.lastError.message }) }, {
      status: s.healthy ? 200 : 503,
    });
  }
  if (path === "/api/v1/webhooks/git") {
    if (req.method !== "POST") return notAllowed("POST");
    return await webhook(opts, req);
  }
  await req.body?.cancel();
  throw new OrcaError("not_found", `no route ${req.method} ${path}`, {
    hint: "orca gitops serves GET /status, GET /healthz and POST /api/v1/webhooks/git",
  });
}

async function webhook(opts: StatusServerOptions, req: Request): Promise<Response> {
  if (!opts.webhookSecret) {
    await req.body?.cancel();
    throw new OrcaError("not_found", "this orca gitops has no webhook secret, so it takes no webhook", {
      hint: "start it with --webhook-secret-file FILE (or webhook_secret_file in [gitops])",
    });
  }
  const body = await readBody(req, MAX_WEBHOOK_BYTES, "the webhook body");
  const verdict = await verifySignature(opts.webhookSecret, req.headers, body);
  if (verdict !== "valid") {
    throw new OrcaError(
      "unauthorized",
      verdict === "missing" ? "the webhook carries no signature" : "the webhook's signature does not match its body",
      { hint: "sign the body with HMAC-SHA256 under the shared secret (X-Hub-Signature-256: sha256=<hex>)" },
    );
  }
  const event = req.headers.get("x-github-event") ?? req.headers.get("x-gitea-event") ??
    req.headers.get("x-gogs-event");
  if (event === "ping") return Response.json({ ok: true, event: "ping" });
  const ref = pushedRef(body);
  if (ref !== undefined && ref !== `refs/heads/${opts.info.branch}`) {
    return Response.json({ ok: true, ignored: `a push to ${ref}; this follows refs/heads/${opts.info.branch}` }, {
      status: 202,
    });
  }
  const outcome = await opts.loop.syncNow("webhook");
  return syncResponse(outcome);
}

/** The webhook's answer: 200 when it converged, 422 for an invalid commit, 503 (Retry-After) when it could not. */
function syncResponse(o: SyncOutcome): Response {
  const body = {
    result: o.result,
    commit: o.commit ?? null,
    duration_ms: o.durationMs,
    ...(o.changes && { changes: o.changes }),
    ...(o.error && { error: o.error }),
  };
  if (o.result === "deployed" || (o.result === "unchanged" && !o.error)) return Response.json(body);
  if (o.result === "invalid" || o.result === "unchanged") return Response.json(body, { status: 422 });
  // Not deployed now, but it may be soon: a node it needs is offline, the server or the repository did not answer.
  return Response.json(body, { status: 503, headers: { "retry-after": String(o.error?.retryAfter ?? 5) } });
}

/** The `ref` of a push payload (JSON or form-encoded `payload=`), when there is one. */
function pushedRef(body: Uint8Array): string | undefined {
  let text = new TextDecoder().decode(body);
  if (text.startsWith("payload=")) text = decodeURIComponent(text.slice(8).replaceAll("+", " "));
  try {
    const ref = (JSON.parse(text) as { ref?: unknown })?.ref;
    return typeof ref === "string" ? ref : undefined;
  } catch {
    return undefined;
  }
}

function notAllowed(allow: string): Response {
  return Response.json({ error: { code: "invalid", message: `method not allowed; use ${allow}` } }, {
    status: 405,
    headers: { allow },
  });
}

function errorResponse(err: unknown): Response {
  return (err instanceof OrcaError ? err : new OrcaError("internal", String(err))).toResponse();
}
