/**
 * The `orca` program: argument parsing, exit codes, printing. The only place
 * that catches everything and prints `error: <what> (<where>)` plus a hint.
 *
 * @module
 */

import { didYouMean } from "./config/mod.ts";
import { describeError, OrcaError } from "./errors.ts";
import { type Command, commandHelp, parseCommandArgs } from "./cli/command.ts";
import { deployCommand } from "./cli/deploy.ts";
import { gitopsCommand } from "./cli/gitops.ts";
import { eventsCommand } from "./cli/events.ts";
import { queueCommand } from "./cli/queue.ts";
import { secretsCommand } from "./cli/secrets.ts";
import { initCommand } from "./cli/init.ts";
import { topCommand } from "./cli/top.ts";
import { installServiceCommand } from "./cli/install_service.ts";
import { runsCommand } from "./cli/runs.ts";
import { logsCommand } from "./cli/logs.ts";
import { execCommand, rmCommand, statsCommand } from "./cli/manage.ts";
import { clusterCommand, nodesCommand } from "./cli/nodes.ts";
import { serverCommand } from "./cli/server.ts";
import { joinCommand } from "./cli/join.ts";
import { statusCommand } from "./cli/status.ts";
import { historyCommand, redeployCommand, rollbackCommand } from "./cli/history.ts";
import { rolloutCommand } from "./cli/rollout.ts";
import { VERSION } from "./version.ts";
import { runHost } from "./runtime/wasm/host.ts";
import { forTerminal } from "./cli/terminal.ts";

const commands: Command[] = [
  initCommand,
  serverCommand,
  joinCommand,
  deployCommand,
  gitopsCommand,
  statusCommand,
  topCommand,
  logsCommand,
  statsCommand,
  execCommand,
  rmCommand,
  historyCommand,
  rollbackCommand,
  redeployCommand,
  rolloutCommand,
  runsCommand,
  queueCommand,
  eventsCommand,
  secretsCommand,
  nodesCommand,
  clusterCommand,
  installServiceCommand,
];

function mainHelp(): string {
  return [
    "orca — a self-hosted, edge-first orchestrator: Wasm components first, containers where Wasm can't serve.",
    "",
    "usage: orca <command> [flags]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`),
    "",
    "Run `orca <command> --help` for its flags. `orca --version` prints the version.",
  ].join("\n");
}

/** Runs the CLI; returns the exit code (0 ok, 1 error, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes("--verbose") || argv.includes("-v");
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      console.log(mainHelp());
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "version") {
      console.log(`orca ${VERSION}`);
      return 0;
    }
    const cmd = commands.find((c) => c.name === name);
    if (!cmd) {
      throw new OrcaError("usage", `unknown command "${name}"${didYouMean(name, commands.map((c) => c.name))}`, {
        hint: "orca --help lists the commands",
      });
    }
    const { values, args } = parseCommandArgs(cmd, rest);
    if (values.help) {
      console.log(commandHelp(cmd));
      return 0;
    }
    return await cmd.run(values, args);
  } catch (err) {
    // An error's text can carry what a guest or a client wrote (a trap message, a name).
    console.error(`error: ${forTerminal(describeError(err), Deno.stderr)}`);
    if (err instanceof OrcaError && err.hint) console.error(`hint: ${forTerminal(err.hint, Deno.stderr)}`);
    if (verbose && err instanceof Error) console.error(err.stack);
    if (!(err instanceof OrcaError) && !verbose) console.error("hint: run again with --verbose for details");
    return err instanceof OrcaError ? err.exitCode : 1;
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "__wasm-host") {
    // A compiled `orca` starts its own guest host processes this way (runtime/wasm/hosts.ts).
    await runHost(Deno.args.slice(1));
    Deno.exit(0);
  }
  Deno.exit(await main(Deno.args));
}
