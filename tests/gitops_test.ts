/**
 * `orca gitops` against real git: a bare repository served by `git daemon`
 * on 127.0.0.1, commits pushed to it, a real server on 127.0.0.1 and a worker
 * on 127.0.0.2 (each its own ORCA_HOME and process group). A push is served
 * within an interval; an invalid commit leaves the last good one serving and
 * is reported with its file and line; a fix converges; a git server gone
 * makes polls back off (doubling), and back they reset; a webhook needs its
 * signature, syncs at once, and answers 503 naming the node when a service it
 * changes is pinned to a worker that is offline.
 */

import assert from "node:assert/strict";
import { call, eventually, type Member, orcaAt, startMember } from "./cluster_harness.ts";
import { cliPath, examplesDir, launchServer } from "./harness.ts";
import { hmacHex } from "../gitops/signature.ts";
import { gitDaemon, manifestRepo, startGitops as gitopsProcess } from "./git_harness.ts";

const PORTS = { api: 18480, http: 18481 };
const GIT_PORT = 18482;
const HELLO = `${examplesDir}/services/hello-c/hello.wasm`;

interface Status {
  repository: string;
  branch: string;
  head: string | null;
  applied: string | null;
  last_sync: { at: string; result: string; commit: string | null } | null;
  last_error: { code: string; message: string; where?: string; commit?: string } | null;
  consecutive_failures: number;
  next_poll: string | null;
  healthy: boolean;
}

/** `orca gitops` following the daemon's repository, with `status()` reading its status API. */
async function startGitops(home: string, token: string, extra: string[]) {
  const repo = `git://127.0.0.1:${GIT_PORT}/manifests.git`;
  const proc = await gitopsProcess(repo, `http://127.0.0.1:${PORTS.api}`, token, home, extra);
  const status = async () => await (await fetch(`${proc.url}/status`)).json() as Status;
  return { ...proc, status };
}

function serviceToml(greeting: string, extra = ""): string {
  return `[[service]]\nname = "hello"\nmodule = "hello.wasm"\ntriggers = ["http:/c/*"]\n` +
    `env = { GREETING = "${greeting}" }\n${extra}`;
}

const pinnedToml = (greeting: string) =>
  `[[service]]\nname = "pinned"\nmodule = "hello.wasm"\ntriggers = ["http:/p/*"]\n` +
  `env = { GREETING = "${greeting}" }\n[service.placement]\nnode = "worker-z2"\n`;

async function greeting(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url);
    const text = await res.text();
    return res.status === 200 ? /greeting=(\S+)/.exec(text)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("orca gitops: pushes served, invalid commits held back, polls back off, the webhook syncs", async (t) => {
  const base = await Deno.makeTempDir({ prefix: "orca-gitops-" });
  const homes = [`${base}/server`, `${base}/worker`, `${base}/gitops`];
  const ends: (() => Promise<void>)[] = [];
  let server: Member | undefined;
  try {
    const { work, push } = await manifestRepo(base, HELLO);
    let daemon = gitDaemon(base, GIT_PORT);
    ends.push(() => daemon.end());

    for (const home of homes) await Deno.mkdir(home);
    server = await startMember("127.0.0.1", homes[0], ["--node-timeout-secs", "2"], PORTS);
    const token = (await Deno.readTextFile(`${homes[0]}/cluster.token`)).trim();
    const proxy = `http://127.0.0.1:${PORTS.http}`;

    const poller = await startGitops(homes[2], token, ["--interval", "500ms"]);
    ends.push(() => poller.end());

    await t.step("a pushed service is served within an interval of the push", async () => {
      const commit = await push("add hello", { "services/web/service.toml": serviceToml("v1") });
      const pushed = Date.now();
      await eventually("v1 served", async () => (await greeting(`${proxy}/c/x`)) === "v1");
      console.log(`push to serving: ${Date.now() - pushed} ms (poll interval 500 ms)`);
      const s = await poller.status();
      assert.equal(s.applied, commit);
      assert.equal(s.head, commit);
      assert.equal(s.healthy, true);
      assert.equal(s.last_error, null);
      // The deploy history names the commit it came from.
      const history = await call(server!.apiUrl, token, "/deploys");
      assert.match(JSON.stringify(history.body), new RegExp(`orca gitops ${commit.slice(0, 12)}`));
    });

    await t.step("the status API: GET and POST /status, GET /healthz, every field", async () => {
      const viaPost = await (await fetch(`${poller.url}/status`, { method: "POST" })).json() as Status;
      for (
        const key of ["repository", "branch", "head", "applied", "last_sync", "last_error", "next_poll", "healthy"]
      ) {
        assert.ok(key in viaPost, `status has ${key}: ${JSON.stringify(viaPost)}`);
      }
      assert.equal(viaPost.repository, `git://127.0.0.1:${GIT_PORT}/manifests.git`);
      assert.equal(viaPost.branch, "main");
      assert.ok(Date.parse(viaPost.next_poll!) > 0 && Date.parse(viaPost.last_sync!.at) > 0);
      const health = await fetch(`${poller.url}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const nowhere = await fetch(`${poller.url}/deploy`, { method: "POST", body: "{}" });
      assert.equal(nowhere.status, 404);
      await nowhere.body?.cancel();
      const put = await fetch(`${poller.url}/status`, { method: "PUT", body: "x" });
      assert.equal(put.status, 405);
      await put.body?.cancel();
      // No webhook secret given: no webhook.
      const hook = await fetch(`${poller.url}/api/v1/webhooks/git`, { method: "POST", body: "{}" });
      assert.equal(hook.status, 404);
      await hook.body?.cancel();
    });

    let good = "";
    await t.step("an invalid commit: the last good one keeps serving, the status names file and line", async () => {
      good = (await poller.status()).applied!;
      const bad = await push("typo", { "services/web/service.toml": serviceToml("v2", 'memroy = "32Mi"\n') });
      const s = await eventually("the invalid commit reported", async () => {
        const s = await poller.status();
        return s.head === bad && s.last_error ? s : undefined;
      });
      assert.equal(s.applied, good);
      assert.equal(s.last_error!.code, "config");
      assert.equal(s.last_error!.where, "services/web/service.toml:6");
      assert.match(s.last_error!.message, /memroy/);
      assert.equal(s.last_error!.commit, bad);
      assert.equal(s.healthy, false);
      assert.equal(s.last_sync!.result, "invalid");
      const health = await fetch(`${poller.url}/healthz`);
      assert.equal(health.status, 503);
      assert.match(await health.text(), /memroy/);
      assert.equal(await greeting(`${proxy}/c/x`), "v1");
    });

    await t.step("a fix converges and clears the error", async () => {
      const fixed = await push("fix", { "services/web/service.toml": serviceToml("v3") });
      await eventually("v3 served", async () => (await greeting(`${proxy}/c/x`)) === "v3");
      const s = await eventually("status converged", async () => {
        const s = await poller.status();
        return s.applied === fixed && s.healthy ? s : undefined;
      });
      assert.equal(s.last_error, null);
    });

    await t.step("a commit naming a file of this host outside the repository is refused, nothing sent", async () => {
      const escaping = await push("escape", {
        "services/web/service.toml": serviceToml("v9").replace('module = "hello.wasm"', `module = "${HELLO}"`),
      });
      const s = await eventually("the escape reported", async () => {
        const s = await poller.status();
        return s.head === escaping && s.last_error ? s : undefined;
      });
      assert.match(s.last_error!.message, /a module leads outside the repository/);
      assert.equal(await greeting(`${proxy}/c/x`), "v3");
      // The content of the last good commit again: its tree is the one applied, so nothing is deployed.
      const back = await push("back", { "services/web/service.toml": serviceToml("v3") });
      await eventually("healthy again", async () => {
        const s = await poller.status();
        return s.applied === back && s.healthy ? true : undefined;
      });
      assert.equal((await poller.status()).last_sync?.result, "unchanged");
    });

    await t.step("the git server gone: polls back off, doubling; back, they reset to the interval", async () => {
      const mark = poller.output().length;
      await daemon.end();
      const failures = await eventually("three failed polls", async () => {
        const s = await poller.status();
        return s.consecutive_failures >= 3 ? s : undefined;
      }, 30_000);
      assert.equal(failures.healthy, false);
      assert.equal(failures.applied, (await poller.status()).applied);
      const lines = poller.output().slice(mark).split("\n").filter((l) => l.includes('"result":"failed"')).map((l) =>
        JSON.parse(l) as { time: string; failures: number; retry_in_ms: number }
      );
      assert.deepEqual(lines.slice(0, 3).map((l) => [l.failures, l.retry_in_ms]), [[1, 1000], [2, 2000], [3, 4000]]);
      // Each poll came after the wait the one before announced (git's own time on top).
      for (let i = 1; i < 3; i++) {
        const gap = Date.parse(lines[i].time) - Date.parse(lines[i - 1].time);
        assert.ok(gap >= lines[i - 1].retry_in_ms - 50, `gap ${gap} ms after ${lines[i - 1].retry_in_ms}`);
      }
      assert.equal(await greeting(`${proxy}/c/x`), "v3");
      daemon = gitDaemon(base, GIT_PORT);
      const back = await eventually("polls reset", async () => {
        const s = await poller.status();
        return s.consecutive_failures === 0 && s.healthy ? s : undefined;
      }, 30_000);
      // Back at the interval: the next poll is at most 500 ms after the last.
      assert.ok(Date.parse(back.next_poll!) - Date.parse(back.last_sync!.at) <= 1500);
      await poller.end("SIGTERM");
      assert.match(poller.output(), /"msg":"gitops stopped"/);
    });

    // A worker on 127.0.0.2, and the second orca gitops with a webhook and an hour between polls.
    const secret = "hook-secret-for-tests";
    await Deno.writeTextFile(`${base}/webhook.secret`, `${secret}\n`);
    const worker = await launchServer([
      "join",
      `127.0.0.1:${PORTS.api}`,
      "--token",
      token,
      "--listen",
      "127.0.0.2",
      "--api-port",
      String(PORTS.api),
      "--http-port",
      String(PORTS.http),
      "--home",
      homes[1],
      "--name",
      "worker-z2",
      "--workers",
      "1",
      "--pool-size",
      "1",
    ], { group: true, timeoutMs: 60_000 });
    ends.push(() => worker.end("SIGKILL"));
    const hooked = await startGitops(homes[2], token, [
      "--interval",
      "1h",
      "--webhook-secret-file",
      `${base}/webhook.secret`,
    ]);
    ends.push(() => hooked.end());
    const hook = async (body: string, headers: Record<string, string>) => {
      const res = await fetch(`${hooked.url}/api/v1/webhooks/git`, { method: "POST", body, headers });
      return { status: res.status, headers: res.headers, body: await res.json() };
    };
    const signed = async (body: string) => ({
      "x-github-event": "push",
      "x-hub-signature-256": `sha256=${await hmacHex(
        new TextEncoder().encode(secret),
        new TextEncoder().encode(body),
      )}`,
    });

    await t.step("a webhook: bad or no signature 401; signed, it syncs at once", async () => {
      await eventually("the second gitops synced", async () => (await hooked.status()).last_sync ? true : undefined);
      const commit = await push("v4", { "services/web/service.toml": serviceToml("v4") });
      const body = JSON.stringify({ ref: "refs/heads/main", after: commit });
      assert.equal((await hook(body, {})).status, 401);
      const forged = await hook(body, { "x-hub-signature-256": `sha256=${"0".repeat(64)}` });
      assert.equal(forged.status, 401);
      assert.match(JSON.stringify(forged.body), /does not match/);
      // Signed for another body: refused too.
      assert.equal((await hook(body, await signed(body.replace("main", "mainx")))).status, 401);
      const other = await hook(
        JSON.stringify({ ref: "refs/heads/dev" }),
        await signed(JSON.stringify({ ref: "refs/heads/dev" })),
      );
      assert.equal(other.status, 202);
      // Gitea's header works as GitHub's does; the sync answers with what it deployed.
      const giteaSig = (await signed(body))["x-hub-signature-256"].slice(7);
      const res = await hook(body, { "x-gitea-event": "push", "x-gitea-signature": giteaSig });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.result, "deployed");
      assert.equal(res.body.commit, commit);
      assert.equal(await greeting(`${proxy}/c/x`), "v4");
      // Too big a body is refused before it is read whole.
      const huge = await fetch(`${hooked.url}/api/v1/webhooks/git`, {
        method: "POST",
        body: new Uint8Array(6 * 1024 * 1024),
      });
      assert.equal(huge.status, 413);
      await huge.body?.cancel();
    });

    await t.step(
      "a webhook for a service pinned to an offline worker: 503 naming the node, then it converges",
      async () => {
        await Deno.mkdir(`${work}/services/pin`);
        await Deno.copyFile(HELLO, `${work}/services/pin/hello.wasm`);
        const placed = await push("pinned", { "services/pin/service.toml": pinnedToml("p1") });
        const first = await hook(
          JSON.stringify({ ref: "refs/heads/main" }),
          await signed(JSON.stringify({ ref: "refs/heads/main" })),
        );
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(first.body.commit, placed);
        await eventually("pinned served", async () => (await greeting(`${proxy}/p/x`)) === "p1");
        worker.signal("SIGSTOP");
        await eventually("the worker seen offline", async () => {
          const r = await orcaAt(server!.apiUrl, token, "nodes", "--json");
          const rows = r.code === 0 ? JSON.parse(r.stdout) as { role: string; error?: string }[] : [];
          return rows.some((n) => n.role !== "voter" && n.error) ? true : undefined;
        });
        const next = await push("pinned v2", { "services/pin/service.toml": pinnedToml("p2") });
        const body = JSON.stringify({ ref: "refs/heads/main" });
        const refused = await hook(body, await signed(body));
        assert.equal(refused.status, 503, JSON.stringify(refused.body));
        assert.ok(Number(refused.headers.get("retry-after")) > 0);
        assert.match(JSON.stringify(refused.body), /worker-z2/);
        assert.equal((await hooked.status()).applied, placed);
        // orca redeploy, by hand, is refused the same way while the worker is away.
        const byHand = await call(server!.apiUrl, token, "/services/pin/pinned/redeploy", {
          method: "POST",
          body: "{}",
        });
        assert.equal(byHand.status, 503, JSON.stringify(byHand.body));
        assert.match(JSON.stringify(byHand.body), /worker-z2/);
        worker.signal("SIGCONT");
        const again = await eventually("the worker back, the webhook sent again converges", async () => {
          const r = await hook(body, await signed(body));
          return r.status === 200 ? r : undefined;
        }, 30_000);
        assert.equal(again.body.commit, next);
        await eventually("p2 served", async () => (await greeting(`${proxy}/p/x`)) === "p2");
        // Back, orca redeploy starts it anew: a new version of the same spec, recorded in the history.
        const redeployed = await orcaAt(server!.apiUrl, token, "redeploy", "pinned");
        assert.equal(redeployed.code, 0, redeployed.stderr);
        assert.match(redeployed.stdout, /pin\/pinned started anew/);
        const history = await orcaAt(server!.apiUrl, token, "history", "pin/pinned", "--json");
        assert.match(history.stdout, /orca redeploy pin\/pinned/);
        assert.equal(await greeting(`${proxy}/p/x`), "p2");
      },
    );
  } finally {
    for (const end of ends.reverse()) await end().catch(() => {});
    await server?.kill();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
});

Deno.test("orca gitops: credentials never shown; bad flags are usage errors naming the flag", async () => {
  const home = await Deno.makeTempDir({ prefix: "orca-gitops-creds-" });
  try {
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cliPath, "gitops", ...args, "--server", "http://127.0.0.1:9", "--token", "t"],
        env: { ORCA_HOME: home, NO_COLOR: "1", ORCA_GIT_TOKEN: "tok-from-env-123" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      return { code: out.code, text };
    };
    // Nothing listens on port 9 of loopback: the fetch fails, and says so without the password or the token.
    const once = await run("https://bob:hunter2-pass@127.0.0.1:9/ops/manifests.git", "--once");
    assert.equal(once.code, 1, once.text);
    assert.match(once.text, /"repository": "https:\/\/\*\*\*@127\.0\.0\.1:9\/ops\/manifests\.git"/);
    assert.match(once.text, /"result": "failed"|"consecutive_failures": 1/);
    assert.doesNotMatch(once.text, /hunter2|tok-from-env/);
    for (
      const [args, message] of [
        [["git://127.0.0.1:9/x.git", "--interval", "5"], /--interval "5" is not valid/],
        [["git://127.0.0.1:9/x.git", "--interval", "10ms"], /--interval "10ms" is not valid/],
        [["git://127.0.0.1:9/x.git", "--path", "../../etc"], /--path "..\/..\/etc" is not valid/],
        [["--upload-pack=touch /tmp/x"], /Unknown option|unknown option|not a repository/i],
        [["-x.git"], /Unknown option|unknown option|not a repository/i],
        [["git://127.0.0.1:9/x.git", "--status-port", "99999"], /--status-port "99999" is not a port/],
        [["git://127.0.0.1:9/x.git", "--token-file", `${home}/missing`], /token_file .*missing cannot be read/],
        [[], /no repository to follow/],
        [["git://127.0.0.1:9/x.git", "--config", `${home}/nope.toml`], /--config .*nope\.toml: no such file/],
        [["git://127.0.0.1:9/x.git", "--ssh-key", `${home}/no-key`], /ssh-key .*no-key cannot be read/],
      ] as [string[], RegExp][]
    ) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.text}`);
      assert.match(r.text, message);
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
