/**
 * Module and file bytes stay out of the log: a server that lacks what a
 * deployed service references fetches it from a peer (checked against its
 * sha256) and stores it. One it cannot get makes that service fail to start
 * here, named in its status, until a peer has it.
 */

import { type ServiceSpec, sha256Hex } from "../config/mod.ts";
import { keyOf } from "./deploy_request.ts";
import type { Store } from "./store.ts";

export async function bringMissing(
  specs: ServiceSpec[],
  store: Store,
  fetchMissing: (kind: "module" | "blob", hash: string) => Promise<void>,
  log: (line: string) => void,
): Promise<void> {
  for (const spec of specs) {
    const wanted: ["module" | "blob", string][] = [];
    if (spec.module_hash && !store.hasModule(spec.module_hash)) wanted.push(["module", spec.module_hash]);
    for (const mount of Object.values(spec.wasm.files)) {
      for (const hash of Object.values(mount.tree ?? {})) if (!store.hasBlob(hash)) wanted.push(["blob", hash]);
    }
    for (const [kind, hash] of wanted) {
      try {
        await fetchMissing(kind, hash);
      } catch (err) {
        log(`${keyOf(spec)}: cannot fetch ${kind} ${hash} from a peer: ${(err as Error).message}`);
      }
    }
  }
}

/** Fetches a module's or file's bytes from the first of `peers` (servers' APIs) that has them, checked by hash. */
export async function fetchFromPeers(
  peers: { id: string; address: string }[],
  token: string,
  store: Store,
  kind: "module" | "blob",
  hash: string,
): Promise<void> {
  const reasons: string[] = [];
  for (const { id, address } of peers) {
    try {
      const res = await fetch(`http://${address}/api/v1/${kind}s/${hash}?stale=1`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(60_000),
      });
      if (!res.ok) {
        await res.body?.cancel();
        reasons.push(`${id}: ${res.status}`);
        continue;
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if ((await sha256Hex(bytes)) !== hash) {
        reasons.push(`${id}: bytes do not match their hash`);
        continue;
      }
      if (kind === "module") store.putModule(hash, bytes);
      else store.putBlob(hash, bytes);
      return;
    } catch (err) {
      reasons.push(`${id}: ${(err as Error).message}`);
    }
  }
  throw new Error(reasons.length > 0 ? reasons.join("; ") : "no peer to ask");
}
