/**
 * The load generator `deno task bench:raft` drives both clusters with: a
 * closed loop of `concurrency` workers, each sending its next request as soon
 * as the last one is answered, for a fixed time. A request counts once it is
 * answered with success; its latency is from send to answer.
 */

export interface LoadResult {
  concurrency: number;
  /** Successful requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  errors: number;
}

/** Runs `request(worker, n)` (true: success) in `concurrency` loops for `warmupMs` (not counted), then `durationMs`. */
export async function closedLoop(
  concurrency: number,
  durationMs: number,
  request: (worker: number, n: number) => Promise<boolean>,
  warmupMs = 500,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const worker = async (w: number) => {
    for (let n = 0;; n++) {
      const sent = performance.now();
      if (sent >= end) return;
      const ok = await request(w, n);
      const done = performance.now();
      if (sent < measureFrom || done > end) continue;
      if (ok) latencies.push(done - sent);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    concurrency,
    rps: latencies.length / (durationMs / 1000),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    ok: latencies.length,
    errors,
  };
}

/** A fetch whose answer is read whole (so the connection is reused); true when it succeeded. */
export async function send(url: string, init: RequestInit): Promise<boolean> {
  try {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return res.ok;
  } catch (err) {
    if (err instanceof TypeError) return false; // the server went away: an error, counted
    throw err;
  }
}
