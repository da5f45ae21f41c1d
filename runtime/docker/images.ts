/** Images on the engine: present or not, and pulls with their progress. */

import type { Engine } from "./engine.ts";
import { engineStatus } from "./engine.ts";
import { splitImage } from "./util.ts";

/** Whether the engine has `image` locally. */
export async function imagePresent(engine: Engine, image: string): Promise<boolean> {
  try {
    await engine.request("GET", `/images/${encodeURIComponent(image)}/json`);
    return true;
  } catch (err) {
    if (engineStatus(err) === 404) return false;
    throw err;
  }
}

/** Pulls `image`, yielding the engine's progress objects (`status`, `progress`, `id`, or `error`). */
export async function* pullImage(engine: Engine, image: string): AsyncGenerator<Record<string, unknown>> {
  const [fromImage, tag] = splitImage(image);
  const stream = await engine.stream("POST", "/images/create", { query: { fromImage, tag } });
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) yield JSON.parse(line);
  }
  if (pending.trim()) yield JSON.parse(pending);
}
