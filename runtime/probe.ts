/** A health probe through an in-process HTTP handler: a GET as a request from outside would run. */

import type { HttpContext, ProbeFailure } from "./types.ts";

/** GETs `path` through `serve`, given `timeoutMs` to answer (the call itself still ends at its own deadline). */
export async function probeThrough(
  serve: (request: Request, ctx: HttpContext) => Promise<Response>,
  path: string,
  timeoutMs: number,
): Promise<ProbeFailure> {
  const request = new Request(`http://probe.orca.internal${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`GET ${path} gave no answer in ${timeoutMs} ms`), timeoutMs);
  });
  const answer = serve(request, { params: {}, route: path }).then(
    async (res) => {
      await res.body?.cancel();
      return res.status < 400 ? undefined : `GET ${path} answered ${res.status}`;
    },
    (err) => `GET ${path}: ${(err as Error).message ?? err}`,
  );
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
