/** Day-one commands: `orca init` writes folders that deploy as they are and answer; `orca install-service` units. */

import assert from "node:assert/strict";
import { get, orca, startServer } from "./harness.ts";

Deno.test("orca init: js and c folders deploy as they are and answer; an existing one is not written over", async () => {
  const server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "orca-init-" });
  try {
    const js = await orca(undefined, "init", `${dir}/site`);
    assert.equal(js.code, 0, js.stderr);
    assert.match(js.stdout, /wrote .*services\/site\/service\.toml, .*hello\.js, .*hello\.wasm/);
    assert.match(js.stdout, /deploy it: orca deploy/);
    const c = await orca(undefined, "init", `${dir}/site`, "--template", "c", "--project", "tools", "--name", "greet");
    assert.equal(c.code, 0, c.stderr);
    const box = await orca(
      undefined,
      ...["init", `${dir}/site`, "--template", "container", "--project", "box", "--image", "orca-examples/busybox:1"],
    );
    assert.equal(box.code, 0, box.stderr);
    assert.match(
      await Deno.readTextFile(`${dir}/site/services/box/service.toml`),
      /image = "orca-examples\/busybox:1"/,
    );

    // All three are a deployable folder; the container's image has no server in it, so it is planned, not run.
    const planned = await orca(server, "deploy", `${dir}/site`, "--plan");
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, /box\/web/);
    await Deno.remove(`${dir}/site/services/box`, { recursive: true });
    const real = await orca(server, "deploy", `${dir}/site`);
    assert.equal(real.code, 0, real.stderr);
    const hello = await get(`${server.httpUrl}/hello`);
    assert.equal(hello.status, 200);
    assert.match(hello.text, /hello from a JavaScript edge function/);
    assert.equal((await get(`${server.httpUrl}/hello/greet/ada`)).text, "hello, ada!\n");
    assert.match((await get(`${server.httpUrl}/greet`)).text, /hello from a C edge function/);

    const again = await orca(undefined, "init", `${dir}/site`);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /service\.toml is there already; nothing was written/);
    assert.equal((await orca(undefined, "init", `${dir}/site`, "--force")).code, 0);
    assert.match(await Deno.readTextFile(`${dir}/site/services/site/service.toml`), /name = "hello"/);

    for (const bad of [["--template", "rust"], ["--name", "Bad Name"], ["--project", "../etc"]]) {
      const r = await orca(undefined, "init", `${dir}/x`, ...bad);
      assert.equal(r.code, 2, bad.join(" "));
    }
    assert.ok(
      !(await Deno.stat(`${dir}/x/services`).then(() => true, () => false)),
      "nothing written on a usage error",
    );
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orca install-service: units systemd accepts, the port capability, no token; a worker's joins", async () => {
  const dir = await Deno.makeTempDir({ prefix: "orca-units-" });
  try {
    const r = await orca(undefined, "install-service", "--dir", dir, "--http-port", "80", "--https-port", "443");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`wrote ${dir}/orca\\.service`));
    assert.match(r.stdout, /systemctl daemon-reload && systemctl enable --now orca\.service/);
    const unit = await Deno.readTextFile(`${dir}/orca.service`);
    assert.match(unit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^ExecStart=.* server --home \/var\/lib\/orca --http-port 80 --https-port 443$/m);
    assert.match(unit, /^User=orca$/m);
    assert.doesNotMatch(unit, /token/i);
    const analyze = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir}/orca.service`],
      stderr: "piped",
    })
      .output().catch(() => undefined);
    if (analyze) assert.ok(analyze.success, new TextDecoder().decode(analyze.stderr));

    const worker = await orca(undefined, "install-service", "--leader", "10.0.0.1:6880", "--dry-run");
    assert.equal(worker.code, 0, worker.stderr);
    assert.match(worker.stdout, /^# orca-agent\.service$/m);
    assert.match(worker.stdout, /^ExecStart=.* join 10\.0\.0\.1:6880 --home \/var\/lib\/orca$/m);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["orca.service"], "--dry-run wrote nothing");

    for (const bad of [["--leader", "a:1", "--join", "b:2"], ["--home", "/x; rm -rf /"], ["--user", "Root Kit"]]) {
      const b = await orca(undefined, "install-service", "--dry-run", ...bad);
      assert.equal(b.code, 2, bad.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
