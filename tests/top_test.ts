/**
 * `orca top` under tmux: a real terminal (a tmux pane), real keys (send-keys), what it shows read back
 * (capture-pane): services with their rates, nodes, the selected service's logs, arrow keys moving the selection,
 * q restoring the terminal. And `--once` for a pipe; escape sequences a guest logs are shown as text.
 */

import assert from "node:assert/strict";
import { cliPath, examplesDir, orca, startServer, until, writeProject } from "./harness.ts";
import { renderTop } from "../cli/top.ts";

const hasTmux = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success, () => false);

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "orca top under tmux: services with rates, nodes, logs of the selected one; arrows move; q quits",
  ignore: !hasTmux,
  async fn() {
    const server = await startServer();
    const session = `orca-top-${crypto.randomUUID().slice(0, 8)}`;
    const dir = await writeProject({
      web: [
        `[[service]]\nname = "alpha"\nmodule = "${examplesDir}/services/hello-js/hello.wasm"\ntriggers = ["http:/a/*"]`,
        `[[service]]\nname = "beta"\nmodule = "${examplesDir}/services/hello-js/hello.wasm"\ntriggers = ["http:/b/*"]`,
      ].join("\n"),
    });
    try {
      assert.equal((await orca(server, "deploy", dir)).code, 0);
      const command =
        `NO_COLOR=1 ORCA_HOME=${server.home} ${Deno.execPath()} run -A ${cliPath} top --server ${server.apiUrl}`;
      await tmux("new-session", "-d", "-s", session, "-x", "140", "-y", "40", command);
      const screen = () => tmux("capture-pane", "-p", "-t", session);
      await until("the first frame", async () => (await screen()).includes("web/alpha") || undefined, 30_000);

      // Traffic to alpha shows as a rate; its logs show the requests.
      const load = (async () => {
        for (let i = 0; i < 40; i++) await (await fetch(`${server.httpUrl}/a/ping-${i}`)).body?.cancel();
      })();
      await load;
      const busy = await until("alpha's rate", async () => {
        const s = await screen();
        return /> web\/alpha\s+running\s+v1\s+\S+\s+[1-9]\d*\.\d/.test(s) ? s : undefined;
      });
      assert.match(busy, /NODE\s+ADDRESS\s+ROLE/);
      assert.match(busy, /voter\*/);
      assert.match(busy, /LOGS of web\/alpha/);
      assert.match(busy, /GET \/a\/ping-\d+/);

      // Down arrow selects beta: its logs replace alpha's.
      await tmux("send-keys", "-t", session, "Down");
      await until("beta selected", async () => {
        const s = await screen();
        return s.includes("> web/beta") && s.includes("LOGS of web/beta") ? s : undefined;
      });
      await tmux("send-keys", "-t", session, "q");
      await until("orca top gone", async () => {
        const panes = await tmux("list-panes", "-a", "-F", "#{session_name} #{pane_dead}").catch(() => "");
        return !panes.includes(session) || undefined;
      });
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await server.stop();
    }
  },
});

Deno.test("orca top --once prints one frame to a pipe", async () => {
  const server = await startServer();
  try {
    const r = await orca(server, "top", "--once");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERVICE\s+STATE\s+VERSION\s+REPLICAS\s+REQ\/S\s+ERR\/S/);
    assert.match(r.stdout, /no services deployed/);
  } finally {
    await server.stop();
  }
});

Deno.test("a frame fits its terminal and shows what guests log as text, not escape sequences", () => {
  const lines = renderTop(
    {
      server: "http://127.0.0.1:6880",
      services: [{
        project: "p",
        name: "s",
        runtime: "wasm",
        routes: [],
        state: "running",
        instances: 1,
        version: 3,
        updatedAt: 0,
        requests: 0,
        errors: 0,
      }],
      nodes: [],
      rates: new Map([["p/s", { rps: 12.5, errors: 0.5 }]]),
      selected: 0,
      logs: Array.from({ length: 100 }, (_, i) => `line ${i} \x1b[2J\x1b]0;owned\x07`),
    },
    100,
    20,
  );
  assert.equal(lines.length, 20);
  assert.ok(lines.every((l) => l.length <= 100));
  assert.ok(lines.every((l) => !l.includes("\x1b")));
  assert.match(lines.join("\n"), /> p\/s\s+running\s+v3\s+here\s+12\.5\s+0\.5/);
  assert.match(lines.at(-1)!, /line 99 \\x1b\[2J/);
});
