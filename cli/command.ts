/** What every `orca` subcommand is: its flags, its help, and its run function. */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { didYouMean } from "../config/mod.ts";
import { OrcaError } from "../errors.ts";
import { escapeControls } from "./terminal.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Lines describing each flag, shown by `orca <cmd> --help`. */
  flags: string[];
  options: Options;
  /** Most positionals accepted. */
  maxArgs: number;
  run(values: Values, args: string[]): Promise<number>;
}

/** Flags every command takes. */
export const globalOptions: Options = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
};

export const globalFlags = [
  "-h, --help        show help for the command",
  "-v, --verbose     print stack traces on errors",
];

/** Flags of the commands that talk to a server. */
export const clientOptions: Options = {
  server: { type: "string" },
  token: { type: "string" },
};

export const clientFlags = [
  "--server URL      the orca server's API (default $ORCA_SERVER or http://127.0.0.1:6880)",
  "--token TOKEN     API token (default $ORCA_TOKEN, else $ORCA_HOME/cluster.token)",
];

/** Parses `argv` for `cmd`; unknown flags become usage errors with a suggestion. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: Values; args: string[] } {
  const options = { ...globalOptions, ...cmd.options };
  try {
    // After `--`, everything is positional (orca exec svc -- ls -la).
    const dash = argv.indexOf("--");
    const [own, rest] = dash < 0 ? [argv, []] : [argv.slice(0, dash), argv.slice(dash + 1)];
    const parsed = parseArgs({ args: own, options, allowPositionals: true, strict: true });
    const values = parsed.values;
    const positionals = [...parsed.positionals, ...rest];
    if (!values.help && positionals.length > cmd.maxArgs) {
      throw new OrcaError(
        "usage",
        `too many arguments for \`orca ${cmd.name}\`: ${positionals.slice(cmd.maxArgs).join(" ")}`,
        {
          hint: `usage: ${cmd.usage}`,
        },
      );
    }
    return { values: values as Values, args: positionals };
  } catch (err) {
    if (err instanceof OrcaError) throw err;
    const message = (err as Error).message;
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
    const suggestion = flag?.startsWith("--") ? didYouMean(flag.slice(2), Object.keys(options)) : "";
    throw new OrcaError("usage", `${message.replace(/\. To specify a positional.*$/s, "")}${suggestion}`, {
      hint: `usage: ${cmd.usage}  (orca ${cmd.name} --help)`,
    });
  }
}

export function commandHelp(cmd: Command): string {
  return [
    `${cmd.summary}`,
    "",
    `usage: ${cmd.usage}`,
    "",
    "flags:",
    ...[...cmd.flags, ...globalFlags].map((f) => `  ${f}`),
  ]
    .join("\n");
}

/** `$ORCA_HOME`, defaulting to ~/.orca. */
export function orcaHome(): string {
  const home = Deno.env.get("ORCA_HOME");
  if (home) return home;
  const user = Deno.env.get("HOME");
  if (!user) {
    throw new OrcaError("usage", "cannot find the data dir: neither ORCA_HOME nor HOME is set", {
      hint: "set ORCA_HOME",
    });
  }
  return `${user}/.orca`;
}

/** Prints rows as an aligned table. */
export function table(header: string[], rows: string[][]): string {
  // Cells hold what guests and clients sent (errors, message bodies): never raw control characters on a screen.
  rows = rows.map((r) => r.map(escapeControls));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}
