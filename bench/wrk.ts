/** Runs wrk against a URL and reads req/s and latency percentiles from its report. */

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export async function ensureWrk(): Promise<void> {
  const found = await new Deno.Command("sh", { args: ["-c", "command -v wrk"], stdout: "null" }).output();
  if (found.success) return;
  if (Deno.uid() !== 0) throw new Error("the benchmark needs wrk: sudo apt-get install -y wrk");
  console.error("installing wrk (apt-get)");
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "wrk"],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("apt-get install wrk failed");
}

export async function wrk(
  url: string,
  opts: { connections: number; seconds: number; threads?: number; headers?: Record<string, string> },
): Promise<LoadResult> {
  const args = [
    ...Object.entries(opts.headers ?? {}).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    "-t",
    String(opts.threads ?? 1),
    "-c",
    String(opts.connections),
    "-d",
    `${opts.seconds}s`,
    "--latency",
    url,
  ];
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const pct = (p: string) => toMs(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(text));
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
  if (Deno.env.get("BENCH_WRK_DEBUG")) console.error(text);
  return { requestsPerSec: rps, p50Ms: pct("50"), p99Ms: pct("99"), errors };
}

function toMs(m: RegExpExecArray | null): number {
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}
