/** `orca join ADDR`: run a worker node of the cluster whose server's API is at ADDR. */

import { parseLabels, startAgent } from "../control/mod.ts";
import { OrcaError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { type Command, orcaHome } from "./command.ts";
import { hostPort, listenError, metricsListenFlag, port, secondsFlag, untilStopped, workersFlag } from "./server.ts";

export const joinCommand: Command = {
  name: "join",
  summary: "Run a worker node: it runs the replicas the scheduler places on it and takes no part in Raft.",
  usage: "orca join <server-host:port> [--token T] [--name N] [--labels K=V,...] [--listen ADDR] [--http-port 80]",
  flags: [
    "--token T         the cluster's token (default: $ORCA_HOME/cluster.token)",
    "--name N          this node's name, for placement.node (default: the host name)",
    "--labels K=V,...  this node's labels, for placement (e.g. zone=eu-1,role=gpu)",
    "--listen ADDR     address to bind its proxy and API (default 0.0.0.0)",
    "--api-port N      its API, which the servers call (default 6880)",
    "--http-port N     its proxy for routed traffic (default 80)",
    "--https-port N    HTTPS for the services' domains, with the certificates the servers got (default: HTTP only)",
    "--metrics-listen ADDR:PORT  also serve GET /metrics there without a token (always at /api/v1/metrics)",
    "--advertise ADDR  where the servers reach its API (host:port; default: --listen and --api-port)",
    "--home DIR        data dir (default $ORCA_HOME, else ~/.orca)",
    "--pool-size N     pre-made Wasm instances per service (default 4)",
    "--workers N       guest host processes that run Wasm guests (default: one per core; 0: in the process)",
    "--docker-socket P Docker engine socket for container services (default /var/run/docker.sock)",
    "--watchdog-secs N how often the watchdog checks every replica here: restarts, routes, orphans (default 30)",
  ],
  options: {
    token: { type: "string" },
    name: { type: "string" },
    labels: { type: "string" },
    listen: { type: "string" },
    "api-port": { type: "string" },
    "http-port": { type: "string" },
    "https-port": { type: "string" },
    "metrics-listen": { type: "string" },
    advertise: { type: "string" },
    home: { type: "string" },
    "pool-size": { type: "string" },
    workers: { type: "string" },
    "docker-socket": { type: "string" },
    "watchdog-secs": { type: "string" },
  },
  maxArgs: 1,
  async run(values, args) {
    if (!args[0]) {
      throw new OrcaError("usage", "orca join needs a server's address: orca join <host:port> --token T", {
        hint: "the token is in $ORCA_HOME/cluster.token on a server",
      });
    }
    const join = hostPort(args[0], "the server address");
    const home = (values.home as string | undefined) ?? orcaHome();
    const name = (values.name as string | undefined) ?? Deno.hostname();
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/.test(name)) {
      throw new OrcaError("usage", `--name must be 1-63 letters, digits, . _ / -; got ${JSON.stringify(name)}`);
    }
    const workers = workersFlag(values);
    const watchdogSecs = secondsFlag(values, "watchdog-secs", 86400);
    const apiPort = port(values, "api-port", 6880);
    const httpPort = port(values, "http-port", 80);
    let agent;
    try {
      agent = await startAgent({
        home,
        join,
        name,
        hostname: (values.listen as string) ?? "0.0.0.0",
        apiPort,
        httpPort,
        ...(values["https-port"] !== undefined && { httpsPort: port(values, "https-port", 443) }),
        ...metricsListenFlag(values),
        poolSize: port(values, "pool-size", 4),
        ...(workers !== undefined && { workers }),
        ...(watchdogSecs !== undefined && { watchdogSecs }),
        ...(values.token !== undefined && { token: values.token as string }),
        ...(values.labels !== undefined && { labels: parseLabels(values.labels as string) }),
        ...(values.advertise !== undefined && { advertise: hostPort(values.advertise as string, "--advertise") }),
        ...(values["docker-socket"] !== undefined && { dockerSocket: values["docker-socket"] as string }),
      });
    } catch (err) {
      throw listenError(
        err,
        apiPort,
        httpPort,
        values["https-port"] === undefined ? undefined : Number(values["https-port"]),
      );
    }
    console.log(`orca ${VERSION} worker ready`);
    console.log(`  node   ${agent.id} (${name})`);
    console.log(`  api    ${agent.apiUrl}/api/v1`);
    console.log(`  proxy  ${agent.httpUrl}`);
    if (agent.httpsUrl) console.log(`  https  ${agent.httpsUrl}`);
    if (agent.metricsUrl) console.log(`  metrics ${agent.metricsUrl}`);
    console.log(`  data   ${home}`);
    await untilStopped();
    console.error("orca: shutting down");
    await agent.close();
    return 0;
  },
};
