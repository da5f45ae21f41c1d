/**
 * `orca server --join ADDR`: a new server asks a member of the cluster to be
 * added (as a learner), catches up from the leader (snapshot, then log), and
 * then asks to be made a voter. The member asked forwards both requests to
 * the leader if it does not lead. Every server then keeps its record in the
 * registry (address, labels, capacity, GPUs) up to date.
 */

import { OrcaError } from "../errors.ts";
import type { MemberRecord } from "./machine.ts";
import { type NodeFacts, sameFacts } from "./node_facts.ts";
import type { ControlLog } from "./raft_log.ts";

export interface Joined {
  leader: string;
  /** The leader's commit index when it added this server: caught up once applied through it. */
  commit: number;
  members: MemberRecord[];
  /** The cluster's secrets key (base64), to keep in $ORCA_HOME/secrets.key. */
  secretsKey?: string;
}

/** Asks the member at `target` (`host:port`) to add server `id` at `address`; retried while the cluster elects. */
export async function requestJoin(target: string, token: string, id: string, address: string): Promise<Joined> {
  return await callMember(target, token, "/api/v1/cluster/join", { id, address }) as Joined;
}

/** Waits until `log` has applied through `commit`, then asks `target` to make this server a voter. */
export async function promoteWhenCaughtUp(
  log: ControlLog,
  target: string,
  token: string,
  commit: number,
  timeoutMs = 60_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (log.status().applied < commit) {
    if (Date.now() > end) {
      throw new OrcaError("unavailable", `did not catch up with the leader in time (applied ${log.status().applied})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await callMember(target, token, "/api/v1/cluster/promote", { id: log.id });
}

/**
 * Makes the registry's record of this server say `address` and `facts`, if it does not: proposed here on the leader,
 * sent to the leader otherwise (a follower cannot write the log). Resolves with what was done.
 */
export async function registerSelf(
  log: ControlLog,
  token: string,
  address: string,
  facts: NodeFacts,
): Promise<"unchanged" | "registered"> {
  const current = log.members().find((m) => m.id === log.id);
  if (current?.address === address && sameFacts(current.facts, facts)) return "unchanged";
  if (log.isLeader) {
    await log.propose({ type: "member", id: log.id, address, facts, at: Date.now() });
    return "registered";
  }
  const leader = log.leader !== undefined ? log.addressOf(log.leader) : undefined;
  if (!leader) throw new OrcaError("unavailable", "no leader known to register with");
  await callMember(leader, token, `/api/v1/cluster/members/${log.id}`, { address, ...facts }, "PUT");
  return "registered";
}

/** Sends `body` to a member's API; a 503 (no leader yet) or a refused connection is tried again for 20 s. */
/** Sends `body` as JSON to `path` of the node whose API is at `address`, with the cluster token. */
export function postToNode(
  address: string,
  token: string,
  path: string,
  body: unknown,
  timeout: number | AbortSignal,
  method: "POST" | "PUT" = "POST",
): Promise<Response> {
  return fetch(`http://${address}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: typeof timeout === "number" ? AbortSignal.timeout(timeout) : timeout,
  });
}

async function callMember(
  target: string,
  token: string,
  path: string,
  body: unknown,
  method: "POST" | "PUT" = "POST",
): Promise<unknown> {
  const end = Date.now() + 20_000;
  for (;;) {
    let why: string;
    try {
      const res = await postToNode(target, token, path, body, 15_000, method);
      const answer = await res.json().catch(() => undefined);
      if (res.ok) return answer;
      const err = OrcaError.fromJSON(answer) ?? new OrcaError("unavailable", `${target} answered ${res.status}`);
      if (res.status !== 503) throw err;
      why = err.message;
    } catch (err) {
      if (err instanceof OrcaError) throw err;
      why = (err as Error).message;
    }
    if (Date.now() > end) {
      throw new OrcaError("unavailable", `${target} did not answer ${method} ${path}: ${why}`, {
        hint: "check the address (the API port of a server of the cluster, e.g. 10.0.0.1:6880) and that it is up",
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
