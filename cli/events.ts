/** `orca events publish <name> [data|@file]`: publish an event to its subscribers. */

import { OrcaError } from "../errors.ts";
import { Client } from "./client.ts";
import { clientFlags, clientOptions, type Command } from "./command.ts";
import { readMessageArg } from "./input.ts";

export const eventsCommand: Command = {
  name: "events",
  summary: "Publish an event (dotted name) to every service subscribed with a matching event: trigger.",
  usage: "orca events publish <name> [data|@file]",
  flags: ["--json           print the result as JSON", ...clientFlags],
  options: { ...clientOptions, json: { type: "boolean" } },
  maxArgs: 3,
  async run(values, args) {
    const [sub, name, data] = args;
    if (sub !== "publish") {
      throw new OrcaError("usage", sub ? `unknown events command "${sub}"` : "events needs a subcommand", {
        hint: `usage: ${eventsCommand.usage}`,
      });
    }
    if (!name) {
      throw new OrcaError("usage", "publish needs an event name", {
        hint: "orca events publish orders.created '{\"id\":1}'",
      });
    }
    const client = await Client.fromFlags(values);
    const body = data === undefined ? new Uint8Array() : await readMessageArg(data);
    const result = await client.json<{ deliveredTo: string[] }>(`/events/${encodeURIComponent(name)}`, {
      method: "POST",
      body: body as Uint8Array<ArrayBuffer>,
      headers: { "content-type": "application/octet-stream" },
    });
    if (values.json) console.log(JSON.stringify(result));
    else if (result.deliveredTo.length === 0) {
      console.log(`event ${name} published; no service subscribes to it (dropped)`);
    } else console.log(`event ${name} delivered to ${result.deliveredTo.join(", ")}`);
    return 0;
  },
};
