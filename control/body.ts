/**
 * Request bodies read with a limit checked while they stream: a client that
 * announces or sends more than the limit gets 413 as soon as it crosses it,
 * before the rest is read, so no body is ever buffered past its limit.
 */

import { OrcaError } from "../errors.ts";
import { concat } from "../runtime/mod.ts";

/** Limits of the API's request bodies, in bytes. */
export interface BodyLimits {
  /** A module or a mounted file (`PUT /modules/:hash`, `PUT /blobs/:hash`). */
  module: number;
  /** A deploy request's JSON. */
  deploy: number;
  /** A queue publish (one message, or an NDJSON batch) or an event. */
  message: number;
}

export const defaultBodyLimits: BodyLimits = {
  module: 128 * 1024 * 1024,
  deploy: 8 * 1024 * 1024,
  message: 1024 * 1024,
};

/** Small JSON bodies (exec's command line). */
export const SMALL_JSON_BYTES = 64 * 1024;

/** The whole body of `request`, refused with a `too_large` error once it passes `limit` bytes. */
export async function readBody(request: Request, limit: number, what: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new OrcaError("too_large", `${what} is larger than ${limit} bytes`, {
      hint: "send less; the server's limits are in the README (API request limits)",
    });
  const announced = request.headers.get("content-length");
  if (announced !== null && Number(announced) > limit) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      // Stop reading at once: the rest of the body is never taken in.
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0] : concat(chunks);
}

/** A JSON body read under `limit`; `invalid` names `what` when it does not parse. */
export async function readJson(request: Request, limit: number, what: string): Promise<unknown> {
  const bytes = await readBody(request, limit, what);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new OrcaError("invalid", `${what} is not valid JSON`);
  }
}
