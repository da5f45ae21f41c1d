/** Why the driver did not do what it was asked (raft/driver.ts, raft/reads.ts). */

/** Why a proposal or read was not done here; `leader` is where to ask instead, when known. */
export class NotLeaderError extends Error {
  readonly code = "raft_not_leader";
  constructor(readonly leader: string | undefined, message = "not the leader") {
    super(message);
  }
}

/** A membership change that cannot start now; `message` says why. */
export class ConfigChangeError extends Error {
  readonly code = "raft_config_change";
}

/** A proposal or read that did not finish in time: a proposal may still take effect later. */
export class TimeoutError extends Error {
  readonly code = "raft_timeout";
}
