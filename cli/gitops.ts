/**
 * `orca gitops <repo>`: follow a branch of a Git repository and keep the
 * cluster deployed to it (seed 004's pull model). It talks to the server as
 * `orca deploy` does (`--server`, `--token`), so it runs on a server or beside
 * one; it serves its status, health and a push webhook on port 9100.
 */

import {
  BRANCH_PATTERN,
  DEFAULT_POLL_MS,
  DEFAULT_STATUS_PORT,
  FOLDER_PATTERN,
  type GitopsSpec,
  loadProject,
  MAX_POLL_MS,
  MIN_POLL_MS,
  parseClusterFile,
  parseDuration,
  type ProjectBundle,
  REPO_HINT,
  REPO_PATTERN,
  sha256Hex,
} from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { type GitCredentials, redactUrl, SystemGit } from "../gitops/git.ts";
import { ReconcileLoop } from "../gitops/loop.ts";
import { serveStatus, statusDocument } from "../gitops/status_server.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, orcaHome, type Values } from "./command.ts";
import { deployFolder } from "./deploy.ts";

export const gitopsCommand: Command = {
  name: "gitops",
  summary: "Follow a Git repository: deploy its services folder on every new commit (pull-based, like orun).",
  usage: "orca gitops [REPO] [--branch main] [--path DIR] [--interval 5s] [--status-port 9100] [--once]",
  flags: [
    "REPO                   the repository (https://, ssh://, git@host:path, or a path); default: [gitops] repo",
    "--branch NAME          the branch to follow (default main)",
    "--path DIR             the folder in the repository that holds services/ (default: its root)",
    "--interval D           how often to poll, e.g. 5s, 500ms, 1m (default 5s); a failed poll doubles it, 5 min max",
    "--status-port N        serve GET /status, GET /healthz and the webhook here (default 9100; 0: any free port)",
    "--status-host ADDR     the address it listens on (default 127.0.0.1; 0.0.0.0 to take webhooks from outside)",
    "--ssh-key FILE         a read-only deploy key for an ssh:// or git@ repository",
    "--token-file FILE      an HTTPS access token (default $ORCA_GIT_TOKEN); sent as HTTP Basic, never printed",
    "--webhook-secret-file FILE  the shared secret of POST /api/v1/webhooks/git (default $ORCA_WEBHOOK_SECRET)",
    "--config FILE          read [gitops] from this cluster.toml (default ./cluster.toml when it exists)",
    "--clone-dir DIR        where the private clone lives (default $ORCA_HOME/gitops/<repository id>)",
    "--once                 sync once and exit: 0 when the branch's commit runs, 1 when it does not",
    ...clientFlags,
  ],
  options: {
    ...clientOptions,
    branch: { type: "string" },
    path: { type: "string" },
    interval: { type: "string" },
    "status-port": { type: "string" },
    "status-host": { type: "string" },
    "ssh-key": { type: "string" },
    "token-file": { type: "string" },
    "webhook-secret-file": { type: "string" },
    config: { type: "string" },
    "clone-dir": { type: "string" },
    once: { type: "boolean" },
  },
  maxArgs: 1,
  async run(values, args) {
    const spec = await settings(values, args[0]);
    const client = await Client.fromFlags(values);
    client.patienceMs = 0; // a 503 is a failed sync: the loop's backoff retries it
    const credentials: GitCredentials = {
      ...(spec.ssh_key_file && { sshKey: spec.ssh_key_file }),
      ...(await secretFile(spec.token_file, "ORCA_GIT_TOKEN", "token_file").then((t) => t && { token: t })),
    };
    const webhook = await secretFile(spec.webhook_secret_file, "ORCA_WEBHOOK_SECRET", "webhook_secret_file");
    const repository = redactUrl(spec.repo!);
    const cloneDir = (values["clone-dir"] as string | undefined) ??
      `${orcaHome()}/gitops/${(await sha256Hex(new TextEncoder().encode(`${spec.repo}#${spec.branch}`))).slice(0, 16)}`;
    const loop = new ReconcileLoop({
      git: new SystemGit({ url: spec.repo!, branch: spec.branch, dir: cloneDir, credentials }),
      path: spec.path,
      intervalMs: spec.interval_ms,
      deploy: async (dir, commit) => {
        const bundle = await loadProject(dir);
        await confine(bundle, dir, cloneDir);
        return await deployFolder(client, dir, bundle, { quiet: true, by: `orca gitops ${commit.slice(0, 12)}` });
      },
      now: Date.now,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (id) => clearTimeout(id as number),
      log,
    });
    const info = { repository, branch: spec.branch, path: spec.path, intervalMs: spec.interval_ms };
    if (values.once) {
      const outcome = await loop.syncNow("once");
      console.log(JSON.stringify(statusDocument(info, loop.status()), null, 2));
      return outcome.result === "deployed" || (outcome.result === "unchanged" && !outcome.error) ? 0 : 1;
    }
    const stop = new AbortController();
    const server = serveStatus({
      loop,
      info,
      webhookSecret: webhook === undefined ? undefined : new TextEncoder().encode(webhook),
      hostname: spec.status_host,
      port: spec.status_port,
      signal: stop.signal,
      onListen: (addr) =>
        log({
          msg: "gitops started",
          repository,
          branch: spec.branch,
          path: spec.path,
          interval_ms: spec.interval_ms,
          status: `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}/status`,
          webhook: webhook !== undefined,
        }),
    });
    loop.start();
    await new Promise<void>((resolve) => {
      Deno.addSignalListener("SIGINT", () => resolve());
      Deno.addSignalListener("SIGTERM", () => resolve());
    });
    loop.stop();
    await loop.idle(); // a deploy in flight finishes: the server holds the outcome either way
    stop.abort();
    await server.finished;
    log({ msg: "gitops stopped", applied: loop.status().applied ?? null });
    return 0;
  },
};

/** One JSON line on stdout per event: a log shipper reads it as it is. */
function log(entry: Record<string, unknown>): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), level: entry.error ? "error" : "info", ...entry }));
}

/** [gitops] from cluster.toml (when there is one), then the flags over it; checked like the file's values. */
async function settings(values: Values, repoArg: string | undefined): Promise<GitopsSpec> {
  const file = values.config as string | undefined;
  let spec: GitopsSpec = {
    branch: "main",
    path: ".",
    interval_ms: DEFAULT_POLL_MS,
    status_port: DEFAULT_STATUS_PORT,
    status_host: "127.0.0.1",
  };
  const path = file ?? "cluster.toml";
  try {
    const fromFile = parseClusterFile(await Deno.readTextFile(path), path).gitops;
    if (fromFile) spec = fromFile;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) || file !== undefined) {
      if (err instanceof Deno.errors.NotFound) throw new OrcaError("usage", `--config ${file}: no such file`);
      throw err;
    }
  }
  const flag = (name: string, pattern: RegExp, hint: string): string | undefined => {
    const v = values[name] as string | undefined;
    if (v !== undefined && !pattern.test(v)) {
      throw new OrcaError("usage", `--${name} ${JSON.stringify(v)} is not valid`, { hint });
    }
    return v;
  };
  const repo = repoArg ?? spec.repo;
  if (repo === undefined) {
    throw new OrcaError("usage", "no repository to follow", {
      hint: "orca gitops <repo-url>, or set repo in cluster.toml's [gitops]",
    });
  }
  if (!REPO_PATTERN.test(repo)) {
    throw new OrcaError("usage", `${JSON.stringify(redactUrl(repo))} is not a repository git can fetch`, {
      hint: REPO_HINT,
    });
  }
  spec.repo = repo;
  spec.branch = flag("branch", BRANCH_PATTERN, "a branch name such as main") ?? spec.branch;
  spec.path = flag("path", FOLDER_PATTERN, "a folder inside the repository, e.g. prod (no `..`)") ?? spec.path;
  const interval = values.interval as string | undefined;
  if (interval !== undefined) {
    const ms = parseDuration(interval);
    if (ms === undefined || ms < MIN_POLL_MS || ms > MAX_POLL_MS) {
      throw new OrcaError("usage", `--interval ${JSON.stringify(interval)} is not valid`, {
        hint: "a duration between 100ms and 24h, e.g. 5s, 500ms, 1m",
      });
    }
    spec.interval_ms = ms;
  }
  const port = values["status-port"] as string | undefined;
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
      throw new OrcaError("usage", `--status-port ${JSON.stringify(port)} is not a port (0 to 65535)`);
    }
    spec.status_port = Number(port);
  }
  spec.status_host = flag("status-host", /^[A-Za-z0-9.:\[\]-]+$/, "an IP address or host name") ?? spec.status_host;
  for (
    const [name, key] of [["ssh-key", "ssh_key_file"], ["token-file", "token_file"], [
      "webhook-secret-file",
      "webhook_secret_file",
    ]] as const
  ) {
    const v = values[name] as string | undefined;
    if (v !== undefined) spec[key] = v;
  }
  if (spec.ssh_key_file !== undefined) await readable(spec.ssh_key_file, "ssh-key");
  return spec;
}

/** A secret read from its file (trimmed), else from `env`; errors name the file, never the content. */
async function secretFile(file: string | undefined, env: string, what: string): Promise<string | undefined> {
  if (file === undefined) return Deno.env.get(env) || undefined;
  await readable(file, what);
  const text = (await Deno.readTextFile(file)).trim();
  if (text === "") throw new OrcaError("usage", `${what} ${file} is empty`);
  return text;
}

async function readable(file: string, what: string): Promise<void> {
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) throw new OrcaError("usage", `${what} ${file} is not a file`);
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      console.error(`orca: warning: ${what} ${file} can be read by other users; run \`chmod 600 ${file}\``);
    }
  } catch (err) {
    if (err instanceof OrcaError) throw err;
    throw new OrcaError("usage", `${what} ${file} cannot be read: ${(err as Error).message}`);
  }
}

/**
 * A followed repository reaches no file of this host outside its clone: modules and `tls` files must be in it
 * (`[service.wasm] files` are kept inside their project folder already). Checked before anything is sent.
 */
async function confine(bundle: ProjectBundle, dir: string, clone: string): Promise<void> {
  const root = await Deno.realPath(clone);
  const outside = async (path: string) => {
    const real = await Deno.realPath(path).catch(() => path);
    return real !== root && !real.startsWith(`${root}/`);
  };
  for (const file of bundle.modules.values()) {
    if (await outside(file.path)) {
      throw new OrcaError("config", `a module leads outside the repository: ${JSON.stringify(file.path)}`, {
        hint: "commit the module to the repository and name it relative to service.toml",
      });
    }
  }
  for (const [project, specs] of bundle.projects) {
    for (const spec of specs) {
      if (spec.tls === undefined || spec.tls === "off") continue;
      for (const which of ["cert", "key"] as const) {
        const named = spec.tls[which];
        if (named.includes("${secrets.")) continue;
        const path = named.startsWith("/") ? named : `${dir}/services/${project}/${named}`;
        if (await outside(path)) {
          throw new OrcaError(
            "config",
            `service ${spec.name}: \`tls.${which}\` leads outside the repository: ${JSON.stringify(named)}`,
            {
              where: `${dir}/services/${project}/service.toml`,
              hint: "commit the PEM file to the repository, or name an Orca secret: ${secrets.NAME}",
            },
          );
        }
      }
    }
  }
}
