/**
 * cluster.toml's `[gitops]`: the repository `orca gitops` follows, when it is
 * started without one. Every key has the name of its flag.
 */

import type { TableReader } from "./reader.ts";
import type { GitopsSpec } from "./types.ts";
import { parseDuration } from "./units.ts";

/** The poll interval of seed 004 when none is given. */
export const DEFAULT_POLL_MS = 5000;
export const MIN_POLL_MS = 100;
export const MAX_POLL_MS = 24 * 3_600_000;
export const DEFAULT_STATUS_PORT = 9100;

/** A repository git can fetch: a URL (https, http, ssh, git, file), `user@host:path`, or an absolute path. */
export const REPO_PATTERN = /^(?:(?:https?|ssh|git|file):\/\/[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+|\/[^\s]*)$/;
export const REPO_HINT = "use https://host/org/repo.git, ssh://git@host/org/repo.git, git@host:org/repo.git or a path";
/** A branch name as git allows it (roughly: no spaces, no `..`, no leading `-`). */
export const BRANCH_PATTERN = /^(?!-)(?!.*\.\.)[A-Za-z0-9._\/-]{1,200}$/;
/** A folder inside the repository: relative, no `..`. */
export const FOLDER_PATTERN = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._\/-]{1,300}$/;

export function parseGitops(g: TableReader): GitopsSpec {
  const repo = g.string("repo", { pattern: REPO_PATTERN, patternHint: REPO_HINT });
  const interval = g.string("interval", {
    pattern: /^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$/,
    patternHint: 'a duration such as "5s", "500ms" or "1m"',
  });
  const intervalMs = interval === undefined ? DEFAULT_POLL_MS : parseDuration(interval)!;
  if (intervalMs < MIN_POLL_MS || intervalMs > MAX_POLL_MS) {
    throw g.error(g.path("interval"), `is ${interval}; it must be between 100ms and 24h`);
  }
  const spec: GitopsSpec = {
    ...(repo !== undefined && { repo }),
    branch: g.string("branch", { pattern: BRANCH_PATTERN, patternHint: "a branch name such as main" }) ?? "main",
    path: g.string("path", { pattern: FOLDER_PATTERN, patternHint: "a folder inside the repository, e.g. prod" }) ??
      ".",
    interval_ms: intervalMs,
    status_port: g.number("status_port", { integer: true, min: 0, max: 65535 }) ?? DEFAULT_STATUS_PORT,
    status_host: g.string("status_host", { pattern: /^[A-Za-z0-9.:\[\]-]+$/ }) ?? "127.0.0.1",
  };
  for (const key of ["ssh_key_file", "token_file", "webhook_secret_file"] as const) {
    const file = g.string(key);
    if (file !== undefined) spec[key] = file;
  }
  g.done();
  return spec;
}
