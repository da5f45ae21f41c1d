/**
 * What `orca rollback` deploys: the version of a service that ran before (or
 * the one a given deploy left), as a deploy of its project in which only that
 * service changes. It then goes the way of every deploy: warmed, committed to
 * the log, swapped with no request dropped, and recorded in the history.
 */

import { OrcaError } from "../errors.ts";
import { type DeployRequest, keyOf, sameSpec } from "./deploy_request.ts";
import { type VersionRecord, versionsOf } from "./history.ts";
import type { Store } from "./store.ts";

export interface RollbackPlan {
  request: DeployRequest;
  from: number;
  target: VersionRecord;
}

/**
 * The deploy that puts `service` back at the version deploy `to` left it at, or, without `to`, at the newest kept
 * version that differs from the running one. Refused, saying why, when there is none or it is what runs.
 */
export function planRollback(store: Store, service: string, to?: number): RollbackPlan {
  const { services, current } = deployedService(store, service);
  const versions = versionsOf((text) => store.sql(text), service);
  const target = to === undefined
    ? versions.find((v) => v.version < current.version && !sameSpec(v.spec, current.spec))
    : versions.find((v) => v.deploy <= to);
  if (!target) {
    const which = to === undefined ? "an earlier version" : `the version deploy ${to} left`;
    throw new OrcaError("not_found", `${which} of ${service} is not kept`, {
      hint: `orca history ${service} lists the versions kept (the last 10)`,
    });
  }
  if (sameSpec(target.spec, current.spec)) {
    throw new OrcaError(
      "conflict",
      `${service} already runs what version ${target.version} (deploy ${target.deploy}) ran`,
      { hint: `orca history ${service} lists the versions kept` },
    );
  }
  const project = current.spec.project;
  const specs = services.filter((s) => s.spec.project === project).map((s) =>
    keyOf(s.spec) === service ? target.spec : s.spec
  );
  return { request: { projects: { [project]: specs } }, from: current.version, target };
}

/** The deploy request that runs `service`'s project as it is (`orca redeploy` marks the service to start anew). */
export function planRedeploy(store: Store, service: string): DeployRequest {
  const { services, current } = deployedService(store, service);
  const project = current.spec.project;
  return { projects: { [project]: services.filter((s) => s.spec.project === project).map((s) => s.spec) } };
}

/** `service` as deployed, beside every deployed service; not_found when there is none. */
function deployedService(store: Store, service: string) {
  const services = store.services();
  const current = services.find((s) => keyOf(s.spec) === service);
  if (!current) throw new OrcaError("not_found", `no service "${service}"`);
  return { services, current };
}
