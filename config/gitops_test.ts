import assert from "node:assert/strict";
import { parseClusterFile } from "./cluster.ts";

Deno.test("cluster.toml [gitops]: defaults, every key, and bad values named with file and line", () => {
  const none = parseClusterFile(`[gitops]\nrepo = "https://git.example.com/ops/manifests.git"\n`, "cluster.toml");
  assert.deepEqual(none.gitops, {
    repo: "https://git.example.com/ops/manifests.git",
    branch: "main",
    path: ".",
    interval_ms: 5000,
    status_port: 9100,
    status_host: "127.0.0.1",
  });
  const all = parseClusterFile(
    `[gitops]\nrepo = "git@git.example.com:ops/manifests.git"\nbranch = "prod"\npath = "clusters/eu"\n` +
      `interval = "500ms"\nstatus_port = 9200\nstatus_host = "0.0.0.0"\nssh_key_file = "/etc/orca/deploy_key"\n` +
      `token_file = "/etc/orca/git.token"\nwebhook_secret_file = "/etc/orca/hook.secret"\n`,
    "cluster.toml",
  );
  assert.equal(all.gitops?.interval_ms, 500);
  assert.equal(all.gitops?.path, "clusters/eu");
  assert.equal(all.gitops?.webhook_secret_file, "/etc/orca/hook.secret");
  const bad: [string, RegExp][] = [
    [`repo = "--upload-pack=touch /tmp/x"`, /`gitops.repo` has an invalid value/],
    [`path = "../../etc"`, /`gitops.path` has an invalid value/],
    [`path = "/etc"`, /`gitops.path` has an invalid value/],
    [`branch = "-x"`, /`gitops.branch` has an invalid value/],
    [`interval = "5"`, /`gitops.interval` has an invalid value/],
    [`interval = "10ms"`, /`gitops.interval` is 10ms; it must be between 100ms and 24h/],
    [`status_port = 70000`, /`gitops.status_port`/],
    [`pollInterval = "5s"`, /`gitops.pollInterval` is not a known key/],
  ];
  for (const [line, message] of bad) {
    assert.throws(
      () => parseClusterFile(`[cluster]\nname = "x"\n\n[gitops]\n${line}\n`, "cluster.toml"),
      (err: Error) => {
        assert.match(err.message, message);
        assert.equal((err as { where?: string }).where, "cluster.toml:5", line);
        return true;
      },
    );
  }
});
