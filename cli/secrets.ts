/** `orca secrets set|ls|rm`: values services reference as `${secrets.NAME}`; never printed back. */

import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table, type Values } from "./command.ts";

export const secretsCommand: Command = {
  name: "secrets",
  summary: "Set, list or remove secrets (services use them as ${secrets.NAME}).",
  usage: "orca secrets set <name> [value | --from-file F]  |  orca secrets ls [--json]  |  orca secrets rm <name>",
  flags: [
    "--from-file F    (set) the value is the file's content, as it is (a PEM key, a JSON credential)",
    "                 without a value or a file: read from stdin (one trailing newline dropped),",
    "                 or asked for without echo on a terminal; a value that starts with - goes after --",
    "--json           (ls) print as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, "from-file": { type: "string" }, json: { type: "boolean" } },
  maxArgs: 3,
  async run(values, args) {
    const [sub, ...rest] = args;
    if (sub === "set") return await set(values, rest);
    if (sub === "ls" || sub === "list") return await list(values, rest);
    if (sub === "rm" || sub === "remove") return await remove(values, rest);
    throw new OrcaError("usage", sub ? `unknown secrets command "${sub}"` : "secrets needs a subcommand", {
      hint: `usage: ${secretsCommand.usage}`,
    });
  },
};

async function set(values: Values, args: string[]): Promise<number> {
  const [name, given] = args;
  if (!name) throw new OrcaError("usage", "set needs a secret name", { hint: "orca secrets set db_password" });
  const file = values["from-file"] as string | undefined;
  if (file !== undefined && given !== undefined) {
    throw new OrcaError("usage", "give the value or --from-file, not both");
  }
  const value = given !== undefined
    ? new TextEncoder().encode(given)
    : file !== undefined
    ? await readFile(file)
    : await readStdin(name);
  const client = await Client.fromFlags(values);
  const result = await client.json<{ name: string; created: boolean; usedBy: string[] }>(
    `/secrets/${encodeURIComponent(name)}`,
    { method: "PUT", body: value as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/octet-stream" } },
  );
  const users = result.usedBy.length > 0
    ? `; ${result.usedBy.join(", ")} ${result.usedBy.length === 1 ? "restarts" : "restart"} with the new value`
    : "";
  console.log(`secret ${result.name} ${result.created ? "set" : "updated"}${users}`);
  return 0;
}

async function list(values: Values, args: string[]): Promise<number> {
  if (args.length > 0) throw new OrcaError("usage", "secrets ls takes no arguments");
  const client = await Client.fromFlags(values);
  const { secrets } = await client.json<{ secrets: { name: string; updatedAt: number; usedBy: string[] }[] }>(
    "/secrets",
  );
  if (values.json) {
    console.log(JSON.stringify(secrets, null, 2));
    return 0;
  }
  if (secrets.length === 0) {
    console.log("no secrets; orca secrets set NAME adds one");
    return 0;
  }
  console.log(table(
    ["NAME", "UPDATED", "USED BY"],
    secrets.map((s) => [s.name, new Date(s.updatedAt).toISOString(), s.usedBy.join(", ") || "-"]),
  ));
  return 0;
}

async function remove(values: Values, args: string[]): Promise<number> {
  const [name, ...more] = args;
  if (!name || more.length > 0) throw new OrcaError("usage", "rm needs one secret name");
  const client = await Client.fromFlags(values);
  await client.json(`/secrets/${encodeURIComponent(name)}`, { method: "DELETE" });
  console.log(`secret ${name} removed`);
  return 0;
}

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    throw new OrcaError("usage", `--from-file: cannot read ${path} (${(err as Error).message})`);
  }
}

/** The value from stdin: piped (one trailing newline dropped), or typed without echo on a terminal. */
async function readStdin(name: string): Promise<Uint8Array> {
  if (!Deno.stdin.isTerminal()) {
    const bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
    return bytes.at(-1) === 10 ? bytes.subarray(0, bytes.at(-2) === 13 ? -2 : -1) : bytes;
  }
  await Deno.stderr.write(new TextEncoder().encode(`value of ${name}: `));
  Deno.stdin.setRaw(true);
  const typed: number[] = [];
  try {
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      const end = chunk.findIndex((b) => b === 13 || b === 10 || b === 3 || b === 4);
      if (end === -1) {
        typed.push(...chunk);
        continue;
      }
      if (chunk[end] === 3) throw new OrcaError("usage", "cancelled; nothing was set");
      typed.push(...chunk.subarray(0, end));
      break;
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new Uint8Array(typed);
}
