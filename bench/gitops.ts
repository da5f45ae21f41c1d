/**
 * Push to serving, p50 over 10 pushes each way: `orca gitops` polling at its
 * default 5 s, `orca gitops` woken by the signed webhook, and the baseline
 * without it: the same folder deployed by hand with `orca deploy` right after
 * the push. Real git (a bare repository served by `git daemon` on 127.0.0.1),
 * a real server, the real CLI; each push changes what the service answers.
 */

import { hmacHex } from "../gitops/signature.ts";
import { gitDaemon, manifestRepo, startGitops } from "../tests/git_harness.ts";
import { orca, startServer } from "../tests/harness.ts";

const root = new URL("..", import.meta.url).pathname;
const GIT_PORT = 18582;

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchGitops(pushes = 10): Promise<string[]> {
  const base = await Deno.makeTempDir({ prefix: "orca-bench-gitops-" });
  const server = await startServer();
  const ends: (() => Promise<void>)[] = [];
  try {
    const repo = await manifestRepo(base, `${root}examples/services/hello-c/hello.wasm`);
    const work = repo.work;
    let n = 0;
    const push = async () => {
      const greeting = `g${++n}`;
      const toml = `[[service]]\nname = "hello"\nmodule = "hello.wasm"\ntriggers = ["http:/c/*"]\n` +
        `env = { GREETING = "${greeting}" }\n`;
      await repo.push(greeting, { "services/web/service.toml": toml });
      return greeting;
    };
    const served = async (greeting: string, start: number) => {
      for (;;) {
        const text = await fetch(`${server.httpUrl}/c/x`).then((r) => r.text()).catch(() => "");
        if (text.includes(`greeting=${greeting}\n`)) return performance.now() - start;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const daemon = gitDaemon(base, GIT_PORT);
    ends.push(daemon.end);
    const secret = "bench-secret";
    await Deno.writeTextFile(`${base}/hook.secret`, secret);
    const repoUrl = `git://127.0.0.1:${GIT_PORT}/manifests.git`;
    const gitops = async (interval: string, hook: boolean) => {
      const hookFlags = hook ? ["--webhook-secret-file", `${base}/hook.secret`] : [];
      const proc = await startGitops(repoUrl, server.apiUrl, server.token, server.home, [
        "--interval",
        interval,
        ...hookFlags,
      ]);
      ends.push(proc.end);
      const url = proc.url;
      return { url, end: proc.end };
    };

    const manual: number[] = [];
    for (let i = 0; i < pushes; i++) {
      const greeting = await push();
      const start = performance.now();
      const r = await orca(server, "deploy", work);
      if (r.code !== 0) throw new Error(r.stderr);
      manual.push(await served(greeting, start));
    }

    const polled: number[] = [];
    const poller = await gitops("5s", false);
    await served(`g${n}`, performance.now());
    for (let i = 0; i < pushes; i++) {
      // Pushes land at any moment of the interval, not right after a poll.
      await new Promise((r) => setTimeout(r, Math.random() * 5000));
      const greeting = await push();
      polled.push(await served(greeting, performance.now()));
    }
    await poller.end();

    const hooked: number[] = [];
    const hooker = await gitops("1h", true);
    for (let i = 0; i < pushes; i++) {
      const greeting = await push();
      const start = performance.now();
      const body = JSON.stringify({ ref: "refs/heads/main" });
      const sig = await hmacHex(new TextEncoder().encode(secret), new TextEncoder().encode(body));
      const res = await fetch(`${hooker.url}/api/v1/webhooks/git`, {
        method: "POST",
        body,
        headers: { "x-hub-signature-256": `sha256=${sig}` },
      });
      if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
      hooked.push(await served(greeting, start));
    }
    const row = (what: string, xs: number[]) =>
      `  ${what.padEnd(44)} p50 ${p50(xs).toFixed(0).padStart(5)} ms   (${
        (p50(xs) / p50(manual)).toFixed(2)
      }x the baseline)`;
    return [
      `push to serving, p50 of ${pushes} pushes (the service answers the pushed value)`,
      row("baseline: orca deploy by hand after the push", manual),
      row("orca gitops, polling every 5 s (default)", polled),
      row("orca gitops, signed webhook on push", hooked),
    ];
  } finally {
    for (const end of ends.reverse()) await end().catch(() => {});
    await server.stop();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
}
