// How often a node agent writes its status when nothing changed, and how long
// the controller waits before it takes an agent for gone. The second is counted
// in the first so that a faster heartbeat never reads as a dead agent.

/** An agent writes its status at least this often, even when nothing changed. */
export const AGENT_HEARTBEAT_MS = 30_000;

/** Three missed heartbeats: one slow write or a short API outage is not a dead agent. */
export const AGENT_STALE_MS = 3 * AGENT_HEARTBEAT_MS;
