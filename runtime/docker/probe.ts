/** Readiness before traffic: an HTTP probe, a TCP connect, or just "running". */

import { readinessOf, type ServiceSpec } from "../../config/mod.ts";

interface ContainerState {
  Running: boolean;
  Status: string;
  ExitCode: number;
}

/**
 * Waits until a replica is ready: `[service.readiness]` (or `health`) by HTTP,
 * else a TCP connect when it has a port, else running. Probes go to the
 * container's own address (the engine's port proxy accepts before the app
 * listens). Rejects when the container exits or the probe keeps failing.
 */
export async function waitReady(
  spec: ServiceSpec,
  address: { hostname: string; port: number } | undefined,
  state: () => Promise<ContainerState>,
): Promise<void> {
  const probe = readinessOf(spec);
  const deadline = Date.now() + 1000 * (probe ? probe.initial_delay_secs + 60 : 60);
  let last = "not checked yet";
  if (probe?.initial_delay_secs) await sleep(probe.initial_delay_secs * 1000);
  // Asked often at first (most replicas are ready within a second), less as it takes longer.
  let pause = 25;
  while (Date.now() < deadline) {
    const s = await state();
    if (!s.Running) throw new Error(`the container ${s.Status} (exit code ${s.ExitCode})`);
    if (!address) return;
    try {
      if (probe) {
        const res = await fetch(`http://${address.hostname}:${address.port}${probe.path}`, {
          signal: AbortSignal.timeout(probe.timeout_secs * 1000),
        });
        await res.body?.cancel();
        if (res.ok) return;
        last = `GET ${probe.path} answered ${res.status}`;
      } else {
        const conn = await Deno.connect(address);
        conn.close();
        return;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(pause);
    pause = Math.min(pause * 2, probe ? Math.min(probe.interval_secs * 1000, 1000) : 200);
  }
  throw new Error(`not ready after 60 s (${last})`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
