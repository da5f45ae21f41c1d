/**
 * Module and file bytes stay out of the log: a server that lacks what a
 * deployed service references fetches it from a peer (checked against its
 * sha256) and stores it. One it cannot get makes that service fail to start
 * here, named in its status, until a peer has it.
 */

import type { ServiceSpec } from "../config/mod.ts";
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
