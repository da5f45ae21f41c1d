/**
 * The peer `deno task bench:raft` compares against: a 3-member etcd cluster
 * (Debian's etcd-server) on loopback, each member with its own data dir,
 * reached through its v3 JSON gateway.
 */

import { _freeAddr } from "../raft/process_cluster.ts";

export interface EtcdCluster {
  /** Each member's client URL. */
  clientUrls: string[];
  /** The client URL of the member that leads now. */
  leaderUrl(): Promise<string>;
  version: string;
  stop(): Promise<void>;
}

/** The etcd binary: on PATH, or installed from Debian (needs root) when missing. */
export async function findEtcd(): Promise<string> {
  const which = async () => {
    const out = await new Deno.Command("sh", { args: ["-c", "command -v etcd"], stdout: "piped" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  const found = await which();
  if (found) return found;
  console.error("bench:raft: etcd not found; installing Debian's etcd-server");
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "etcd-server"]]) {
    const out = await new Deno.Command("apt-get", { args, stdout: "null", stderr: "inherit" }).output();
    if (!out.success) throw new Error(`Cannot install etcd-server: apt-get ${args.join(" ")} failed`);
  }
  const installed = await which();
  if (!installed) throw new Error("Cannot find etcd after installing etcd-server");
  return installed;
}

export async function startEtcd(binary: string, dir: string): Promise<EtcdCluster> {
  const members = [1, 2, 3].map((i) => {
    const host = `127.0.0.${i}`;
    return { name: `e${i}`, peer: `http://${_freeAddr(host)}`, client: `http://${_freeAddr(host)}` };
  });
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
  const processes = members.map((m) =>
    new Deno.Command(binary, {
      args: [
        ...["--name", m.name, "--data-dir", `${dir}/${m.name}`],
        ...["--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer],
        ...["--listen-client-urls", m.client, "--advertise-client-urls", m.client],
        ...["--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "orca-bench"],
        ...["--logger", "zap", "--log-level", "error"],
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  const clientUrls = members.map((m) => m.client);
  const status = async (url: string) => {
    const res = await fetch(`${url}/v3/maintenance/status`, { method: "POST", body: "{}" });
    if (!res.ok) throw new Error(`etcd status: HTTP ${res.status}`);
    return await res.json() as { header: { member_id: string }; leader: string; version: string };
  };
  const leaderUrl = async () => {
    const all = await Promise.all(clientUrls.map(status));
    const at = all.findIndex((s) => s.header.member_id === s.leader);
    if (at < 0) throw new Error("etcd has no leader");
    return clientUrls[at];
  };
  const end = performance.now() + 30_000;
  for (;;) {
    try {
      await leaderUrl();
      break;
    } catch (err) {
      if (performance.now() > end) throw new Error(`etcd did not elect a leader in 30 s: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    clientUrls,
    leaderUrl,
    version: (await status(clientUrls[0])).version,
    async stop() {
      for (const p of processes) p.kill("SIGTERM");
      await Promise.all(processes.map((p) => p.status));
    },
  };
}
