/**
 * The control plane: desired state in the store, the deploy state machine,
 * the REST API, and `startServer` which assembles a node.
 *
 * @module
 */

export { ControlPlane, type DeployRequest, type DeployResult, describeSummary, type ServiceStatus } from "./plane.ts";
export { createApi } from "./api.ts";
export { loadOrCreateToken, tokenMatches } from "./auth.ts";
export { type DeployRecord, type DeploySummary, Store, type StoredService } from "./store.ts";
export type { HistoryEntry } from "./history.ts";
export type { ReplicaView } from "./watchdog.ts";
export type { RolloutStatus } from "./rollouts.ts";
export { type RunningServer, type ServerOptions, startServer } from "./server.ts";
export { type AgentOptions, type RunningAgent, startAgent } from "./agent.ts";
export { type NodeFacts, parseLabels } from "./node_facts.ts";
export { type DomainTls } from "./certificates.ts";
