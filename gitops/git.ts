/**
 * The repository `orca gitops` follows, through the system `git`: a shallow
 * fetch of one branch into a private clone, the commit it points at, the tree
 * of the tracked folder, and a clean checkout of one commit. Credentials go
 * to git through its environment (never its command line, which `ps` shows),
 * and every error has them cut out.
 */

import { OrcaError } from "../errors.ts";

/** How `orca gitops` reaches a private repository. */
export interface GitCredentials {
  /** An HTTPS token (GitHub, Gitea, GitLab deploy tokens): sent as HTTP Basic `x-access-token:<token>`. */
  token?: string;
  /** An SSH private key file (a read-only deploy key). */
  sshKey?: string;
}

export interface GitSourceOptions {
  url: string;
  branch: string;
  /** The private clone: made on the first fetch, owned by this process. */
  dir: string;
  credentials?: GitCredentials;
  /** The longest one git command may take. */
  timeoutMs?: number;
}

/** What the reconciliation loop needs of a repository (a test can give it another). */
export interface GitSource {
  /** Fetches the branch; answers the commit it points at. */
  fetch(): Promise<string>;
  /** The tree id of `path` at `commit` (a folder unchanged between two commits has the same), or undefined. */
  tree(commit: string, path: string): Promise<string | undefined>;
  /** Puts exactly `commit`'s files in the work tree; answers its folder. */
  checkout(commit: string): Promise<string>;
}

export class SystemGit implements GitSource {
  readonly #opts: GitSourceOptions;
  #ready = false;

  constructor(opts: GitSourceOptions) {
    this.#opts = opts;
  }

  async fetch(): Promise<string> {
    if (!this.#ready) {
      await Deno.mkdir(this.#opts.dir, { recursive: true, mode: 0o700 });
      await this.#git(["init", "--quiet"]);
      this.#ready = true;
    }
    const ref = `refs/remotes/orca/${this.#opts.branch}`;
    await this.#git([
      "fetch",
      "--quiet",
      "--depth=1",
      "--no-tags",
      "--",
      this.#opts.url,
      `+refs/heads/${this.#opts.branch}:${ref}`,
    ]);
    return (await this.#git(["rev-parse", "--verify", `${ref}^{commit}`])).trim();
  }

  async tree(commit: string, path: string): Promise<string | undefined> {
    const spec = path === "." || path === "" ? `${commit}^{tree}` : `${commit}:${path}`;
    try {
      return (await this.#git(["rev-parse", "--verify", "--quiet", spec])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  async checkout(commit: string): Promise<string> {
    await this.#git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit]);
    await this.#git(["clean", "--quiet", "-ffdx"]);
    return this.#opts.dir;
  }

  async #git(args: string[]): Promise<string> {
    const { credentials, timeoutMs = 60_000 } = this.#opts;
    const env: Record<string, string> = {
      GIT_TERMINAL_PROMPT: "0", // never wait on a password prompt
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      LC_ALL: "C",
    };
    const config: [string, string][] = [["safe.directory", "*"], ["protocol.file.allow", "always"]];
    if (credentials?.token) {
      const basic = btoa(`x-access-token:${credentials.token}`);
      config.push(["http.extraHeader", `Authorization: Basic ${basic}`]);
    }
    config.forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
    });
    env.GIT_CONFIG_COUNT = String(config.length);
    if (credentials?.sshKey) {
      const key = credentials.sshKey.replaceAll("'", "'\\''");
      env.GIT_SSH_COMMAND =
        `ssh -i '${key}' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new`;
    }
    const command = new Deno.Command("git", {
      args,
      cwd: this.#opts.dir,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    });
    let out: Deno.CommandOutput;
    try {
      out = await command.output();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new OrcaError("unavailable", "git is not installed on this machine", {
          hint: "install it (apt-get install git); orca gitops runs the system git",
        });
      }
      throw new OrcaError("unavailable", `git ${args[0]}: ${this.#redact(String(err))}`);
    }
    if (out.success) return new TextDecoder().decode(out.stdout);
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").filter(Boolean).slice(-3).join("; ");
    const timedOut = out.signal === "SIGTERM" ? ` (no answer in ${timeoutMs / 1000} s)` : "";
    throw new OrcaError(
      "unavailable",
      `git ${args[0]} failed${timedOut}: ${this.#redact(why || `exit code ${out.code}`)}`,
    );
  }

  /** The message with the token and any user:password in a URL cut out. */
  #redact(text: string): string {
    let out = redactUrl(text);
    const token = this.#opts.credentials?.token;
    if (token) out = out.replaceAll(token, "***");
    return out;
  }
}

/** A URL as it may be shown: `https://user:pass@host/x` becomes `https://***@host/x`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1***@");
}
