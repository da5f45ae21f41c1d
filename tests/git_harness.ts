/**
 * Real git for `orca gitops`' test and bench: a bare repository under
 * `base/repos` served by `git daemon` on 127.0.0.1, a work tree that pushes
 * to it, and processes in groups of their own (`end()` kills the group).
 */

import { cliPath } from "./harness.ts";

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${text(out.stderr)}`);
  return text(out.stdout).trim();
}

/** A process in a group of its own, its output collected; `end()` kills the whole group. */
export function spawnGroup(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command("setsid", { args, env, stdout: "piped", stderr: "piped" }).spawn();
  let output = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
  return {
    output: () => output,
    async end(signal: Deno.Signal = "SIGKILL") {
      try {
        Deno.kill(-child.pid, signal);
      } catch {
        // already gone
      }
      await child.status;
      await done;
    },
  };
}

/** `git daemon` serving every repository under `base/repos` at git://127.0.0.1:<port>/<name>. */
export function gitDaemon(base: string, port: number) {
  const repos = `${base}/repos`;
  const args = ["--reuseaddr", "--export-all", `--base-path=${repos}`, "--listen=127.0.0.1", `--port=${port}`, repos];
  return spawnGroup(["git", "daemon", ...args]);
}

/**
 * A bare repository `base/repos/manifests.git` and a work tree `base/work` holding `services/web/hello.wasm` (a copy
 * of `module`); `push` writes files, commits them all and pushes to main, answering the commit.
 */
export async function manifestRepo(base: string, module: string) {
  await git(base, "init", "--quiet", "--bare", `${base}/repos/manifests.git`);
  const work = `${base}/work`;
  await git(base, "init", "--quiet", "-b", "main", work);
  await git(work, "config", "user.email", "ops@example.test");
  await git(work, "config", "user.name", "ops");
  await Deno.mkdir(`${work}/services/web`, { recursive: true });
  await Deno.copyFile(module, `${work}/services/web/hello.wasm`);
  const push = async (message: string, files: Record<string, string>) => {
    for (const [path, text] of Object.entries(files)) await Deno.writeTextFile(`${work}/${path}`, text);
    await git(work, "add", "-A");
    await git(work, "commit", "--quiet", "-m", message);
    await git(work, "push", "--quiet", `${base}/repos/manifests.git`, "HEAD:main");
    return await git(work, "rev-parse", "HEAD");
  };
  return { work, push };
}

/** `orca gitops <repo>` against `server`, its status on a free port; resolves once it listens, with that URL. */
export async function startGitops(repo: string, server: string, token: string, home: string, extra: string[] = []) {
  const args = ["gitops", repo, "--server", server, "--token", token, "--status-port", "0", ...extra];
  const proc = spawnGroup([Deno.execPath(), "run", "-A", cliPath, ...args], { ORCA_HOME: home, NO_COLOR: "1" });
  const end = Date.now() + 30_000;
  let m: RegExpExecArray | null;
  while (!(m = /"status":"(http:\/\/[^"]+)\/status"/.exec(proc.output()))) {
    if (Date.now() > end) {
      await proc.end();
      throw new Error(`orca gitops did not start:\n${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...proc, url: m[1] };
}
