/**
 * `orca install-service`: systemd units for this machine: `orca.service` (a
 * server: the first of a cluster, or one that joins with `--join`) or, with
 * `--leader ADDR`, `orca-agent.service` (a worker of that cluster). No token
 * goes in a unit (units are world-readable): the node reads it from its data
 * dir, where the first server writes it and a worker's is put by hand.
 */

import { OrcaError } from "../errors.ts";
import { type Command, type Values } from "./command.ts";
import { hostPort } from "./server.ts";

export const installServiceCommand: Command = {
  name: "install-service",
  summary: "Write systemd units that run this machine's node (a server, or a worker with --leader).",
  usage: "orca install-service [--leader ADDR | --join ADDR] [--dry-run] [--dir /etc/systemd/system]",
  flags: [
    "--leader ADDR     a worker of the cluster whose server's API is at ADDR (host:port): orca-agent.service",
    "--join ADDR       a server that joins the cluster at ADDR (default: the first server of a new cluster)",
    "--home DIR        the node's data dir (default /var/lib/orca)",
    "--user NAME       the user it runs as (default orca; it needs the docker group for containers)",
    "--exec CMD        how to run orca (default: this orca program)",
    "--http-port N     the proxy's port (default 80; below 1024 is allowed by the unit's capability)",
    "--https-port N    serve HTTPS on this port too",
    "--dir DIR         where to write the units (default /etc/systemd/system)",
    "--dry-run         print the units; write nothing",
  ],
  options: {
    leader: { type: "string" },
    join: { type: "string" },
    home: { type: "string" },
    user: { type: "string" },
    exec: { type: "string" },
    "http-port": { type: "string" },
    "https-port": { type: "string" },
    dir: { type: "string" },
    "dry-run": { type: "boolean" },
  },
  maxArgs: 0,
  async run(values) {
    const units = serviceUnits(values);
    if (values["dry-run"]) {
      for (const [file, text] of units) console.log(`# ${file}\n${text}`);
      return 0;
    }
    const dir = (values.dir as string | undefined) ?? "/etc/systemd/system";
    for (const [file, text] of units) {
      try {
        await Deno.writeTextFile(`${dir}/${file}`, text, { mode: 0o644 });
      } catch (err) {
        throw new OrcaError("usage", `cannot write ${dir}/${file} (${(err as Error).message})`, {
          hint: "run it as root, or pass --dir to write elsewhere (--dry-run prints them)",
        });
      }
      console.log(`wrote ${dir}/${file}`);
    }
    const [file] = units[0];
    const home = (values.home as string | undefined) ?? "/var/lib/orca";
    const user = (values.user as string | undefined) ?? "orca";
    console.log("next:");
    if (user !== "root") {
      console.log(`  useradd --system --home-dir ${home} --groups docker ${user}  # if there is none`);
    }
    if (values.leader) {
      console.log(`  install -o ${user} -m 600 cluster.token ${home}/cluster.token  # the cluster's token`);
    }
    console.log(`  systemctl daemon-reload && systemctl enable --now ${file}`);
    return 0;
  },
};

/** The units for what `values` ask: `[file name, text]`. */
export function serviceUnits(values: Values): [string, string][] {
  const leader = values.leader === undefined ? undefined : hostPort(values.leader as string, "--leader");
  const join = values.join === undefined ? undefined : hostPort(values.join as string, "--join");
  if (leader && join) throw new OrcaError("usage", "--leader makes a worker, --join a server: give one");
  const home = (values.home as string | undefined) ?? "/var/lib/orca";
  if (!home.startsWith("/") || /[\s"'\\$`;]/.test(home)) {
    throw new OrcaError("usage", "--home must be an absolute path");
  }
  const user = (values.user as string | undefined) ?? "orca";
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new OrcaError("usage", "--user must be a user name");
  const ports = (["http-port", "https-port"] as const).flatMap((flag) => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return [];
    if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
      throw new OrcaError("usage", `--${flag} must be a port (1-65535)`);
    }
    return [`--${flag}`, text];
  });
  const exec = (values.exec as string | undefined) ?? defaultExec();
  const args = leader
    ? ["join", leader, "--home", home, ...ports]
    : ["server", "--home", home, ...ports, ...(join ? ["--join", join] : [])];
  const what = leader ? `Orca worker node (joins ${leader})` : join ? `Orca server (joins ${join})` : "Orca server";
  const text = `[Unit]
Description=${what}
After=network-online.target docker.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=${exec} ${args.join(" ")}
Environment=ORCA_HOME=${home}
User=${user}
${user === "root" ? "" : "SupplementaryGroups=docker\n"}StateDirectory=${
    home.startsWith("/var/lib/") ? home.slice(9) : "orca"
  }
StateDirectoryMode=0700
# Ports below 1024 (80, 443) without root; nothing else.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
PrivateTmp=true
LimitNOFILE=1048576
Restart=always
RestartSec=2
# SIGTERM: in-flight requests finish, the guest hosts stop with it (the whole cgroup).
KillMode=control-group
TimeoutStopSec=45

[Install]
WantedBy=multi-user.target
`;
  return [[leader ? "orca-agent.service" : "orca.service", text]];
}

/** This orca program as a command line: a compiled binary itself, or `deno run` of this checkout's cli.ts. */
function defaultExec(): string {
  const exe = Deno.execPath();
  if (!/(^|\/)deno$/.test(exe)) return exe;
  return `${exe} run --allow-all ${new URL("../cli.ts", import.meta.url).pathname}`;
}
