/**
 * A disk that fails under the server (a full filesystem: a small tmpfs as its
 * data dir) stops it with exit code 74 and a line that says why, rather than
 * letting it acknowledge what it could not store. Every publish acknowledged
 * before that is still there after a restart on a bigger disk.
 */

import assert from "node:assert/strict";
import { startServer } from "./harness.ts";

Deno.test({
  name: "a full disk stops the server (exit 74) without acknowledging what it could not store",
  // Mounting a tmpfs needs root (CI and the development machines run as root).
  ignore: Deno.uid() !== 0,
  async fn() {
    const mnt = await Deno.makeTempDir({ prefix: "orca-small-disk-" });
    const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=6M", "tmpfs", mnt] }).output();
    assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
    const home = `${mnt}/home`;
    const bigger = await Deno.makeTempDir({ prefix: "orca-bigger-disk-" });
    try {
      const server = await startServer(home);
      const body = new Uint8Array(512 * 1024).fill(120);
      const acked: number[] = [];
      let refused = 0;
      for (let i = 0; i < 40 && refused === 0; i++) {
        try {
          const res = await fetch(`${server.apiUrl}/api/v1/queues/fill`, {
            method: "POST",
            headers: { authorization: `Bearer ${server.token}` },
            body,
            signal: AbortSignal.timeout(15_000),
          });
          const answer = await res.json();
          if (res.status === 201) acked.push(...answer.ids);
          else refused++;
        } catch {
          refused++; // the server went away mid-request
        }
      }
      const status = await server.exited();
      assert.equal(status.code, 74, server.output());
      assert.match(server.output(), /fatal: .* failed to write/);
      assert.ok(acked.length > 0, "some publishes fit before the disk filled");

      // Everything acknowledged is there, on a disk with room.
      await new Deno.Command("cp", { args: ["-a", `${home}/.`, bigger] }).output();
      const again = await startServer(bigger);
      try {
        const res = await fetch(`${again.apiUrl}/api/v1/queues`, {
          headers: { authorization: `Bearer ${again.token}` },
        });
        const fill = (await res.json()).topics.find((t: { topic: string }) => t.topic === "fill");
        assert.ok(fill && fill.retained >= acked.length, `kept ${fill?.retained} of ${acked.length} acknowledged`);
      } finally {
        await again.stop();
      }
    } finally {
      await new Deno.Command("umount", { args: ["-l", mnt] }).output();
    }
  },
});
