/** `orca queue publish|ls`: durable topics. */

import type { DeadLetter, TopicInfo } from "../control/queue_store.ts";
import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command, table, type Values } from "./command.ts";
import { readMessageArg } from "./input.ts";

export const queueCommand: Command = {
  name: "queue",
  summary: "Publish to a durable topic, or list topics, consumers and dead letters.",
  usage: "orca queue publish <topic> <message|@file>  |  orca queue ls [--dead] [--json]",
  flags: [
    "--dead           (ls) list the dead-letter messages",
    "--json           print as JSON",
    ...clientFlags,
  ],
  options: { ...clientOptions, dead: { type: "boolean" }, json: { type: "boolean" } },
  maxArgs: 3,
  async run(values, args) {
    const [sub, ...rest] = args;
    if (sub === "publish") return await publish(values, rest);
    if (sub === "ls" || sub === "list") return await list(values, rest);
    throw new OrcaError("usage", sub ? `unknown queue command "${sub}"` : "queue needs a subcommand", {
      hint: `usage: ${queueCommand.usage}`,
    });
  },
};

async function publish(values: Values, args: string[]): Promise<number> {
  const [topic, message] = args;
  if (!topic || message === undefined) {
    throw new OrcaError("usage", "publish needs a topic and a message", {
      hint: "orca queue publish orders '{\"id\":1}'",
    });
  }
  const client = await Client.fromFlags(values);
  const body = await readMessageArg(message);
  const result = await client.json<{ ids: number[] }>(`/queues/${encodeURIComponent(topic)}`, {
    method: "POST",
    body: body as Uint8Array<ArrayBuffer>,
    headers: { "content-type": "application/octet-stream" },
  });
  console.log(values.json ? JSON.stringify(result) : `published message ${result.ids.join(", ")} to ${topic}`);
  return 0;
}

async function list(values: Values, args: string[]): Promise<number> {
  if (args.length > 0) throw new OrcaError("usage", `queue ls takes no arguments`);
  const client = await Client.fromFlags(values);
  if (values.dead) {
    const { dead } = await client.json<{ dead: DeadLetter[] }>("/queues/dead");
    if (values.json) return print(dead);
    if (dead.length === 0) return say("no dead letters");
    console.log(table(
      ["TOPIC", "CONSUMER", "MESSAGE", "ATTEMPTS", "ERROR", "BODY"],
      dead.map((
        d,
      ) => [d.topic, d.consumer, String(d.messageId), String(d.attempts), d.error.slice(0, 50), d.body.slice(0, 40)]),
    ));
    return 0;
  }
  const { topics } = await client.json<{ topics: TopicInfo[] }>("/queues");
  if (values.json) return print(topics);
  if (topics.length === 0) return say("no topics yet");
  const rows: string[][] = [];
  for (const t of topics) {
    if (t.consumers.length === 0) rows.push([t.topic, String(t.retained), "(none)", "-", "-", "-"]);
    for (const c of t.consumers) {
      rows.push([
        t.topic,
        String(t.retained),
        c.consumer,
        String(c.pending),
        c.attempts ? `${c.attempts} (${c.lastError ?? ""})` : "0",
        String(c.dead),
      ]);
    }
  }
  console.log(table(["TOPIC", "KEPT", "CONSUMER", "PENDING", "RETRYING", "DEAD"], rows));
  return 0;
}

function print(value: unknown): number {
  console.log(JSON.stringify(value, null, 2));
  return 0;
}

function say(text: string): number {
  console.log(text);
  return 0;
}
