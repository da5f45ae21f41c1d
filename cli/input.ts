/** Message arguments: literal text, or `@file` for a file's bytes (`@-` for stdin). */

import { OrcaError } from "../errors.ts";

export async function readMessageArg(arg: string): Promise<Uint8Array> {
  if (!arg.startsWith("@")) return new TextEncoder().encode(arg);
  const path = arg.slice(1);
  if (path === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OrcaError("usage", `no such file: ${path}`, { hint: "@FILE reads a message from a file" });
    }
    throw err;
  }
}
