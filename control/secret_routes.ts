/** The API's secrets: names and times to read, values to write, never a value back. */

import type { Hono } from "hono";
import { readBody } from "./body.ts";
import { MAX_SECRET_BYTES, type Secrets } from "./secrets.ts";

export function secretRoutes(app: Hono, secrets: Secrets): void {
  app.get("/secrets", (c) => c.json({ secrets: secrets.list() }));

  // The body is the value, as it is (no JSON: a PEM file or a password goes in unchanged).
  app.put("/secrets/:name", async (c) => {
    const value = await readBody(c.req.raw, MAX_SECRET_BYTES, "secret value");
    return c.json(await secrets.set(c.req.param("name"), value));
  });

  app.delete("/secrets/:name", async (c) => {
    const name = c.req.param("name");
    await secrets.remove(name);
    return c.json({ removed: name });
  });
}
