// /healthz, /readyz and /metrics for one agent: Prometheus gauges of what the
// node's kernel has. Liveness follows the kernel loop (the stall guard
// ticking), never the API server: an outage of the control plane must not
// restart every agent exactly when they guard alone. Readiness follows the
// status reaching the API server.
import type { Server } from 'node:http';
import type { LivePatchNodeStatus, NodePatchPhase } from '../src/api/generated/types.js';
import { serveEndpoints } from '../src/observability/endpoints.js';
import { TextMetrics } from '../src/observability/text-metrics.js';

/** The phases, listed here rather than imported from the schema: the agent loads no schema code. */
const PHASES: Record<NodePatchPhase, true> = {
  Pending: true,
  Loading: true,
  Transitioning: true,
  Patched: true,
  Reversing: true,
  Unpatching: true,
  Unpatched: true,
  Stalled: true,
  Failed: true,
  Replaced: true,
};

export class AgentMetrics {
  readonly registry = new TextMetrics();
  lastReconcileMs = 0;

  constructor() {
    const r = this.registry;
    r.define('livepatch_agent_patches', 'gauge', 'Managed patches on this node by phase');
    r.define(
      'livepatch_agent_transition_in_progress',
      'gauge',
      '1 while a livepatch transition runs on this node',
    );
    r.define('livepatch_agent_reconciles_total', 'counter', 'Reconcile passes of the node agent');
    r.define(
      'livepatch_agent_status_writes_total',
      'counter',
      'Writes of LivePatchNode status, by why: a change, or a heartbeat alone',
    );
  }

  observe(status: LivePatchNodeStatus, now: number): void {
    for (const phase of Object.keys(PHASES) as NodePatchPhase[]) {
      const count = (status.patches ?? []).filter((p) => p.phase === phase).length;
      this.registry.set('livepatch_agent_patches', count, { phase });
    }
    this.registry.set('livepatch_agent_transition_in_progress', status.transitioning ? 1 : 0);
    this.registry.inc('livepatch_agent_reconciles_total');
    this.lastReconcileMs = now;
  }

  statusWritten(why: 'change' | 'heartbeat'): void {
    this.registry.inc('livepatch_agent_status_writes_total', { why });
  }
}

/**
 * Serves until closed. /healthz: the kernel loop ran within `staleMs`.
 * /readyz: `reportProblem` (the status not reaching the API server) says nothing.
 */
export function serveAgentEndpoints(
  metrics: AgentMetrics,
  port: number,
  staleMs: number,
  reportProblem: () => string | undefined,
): Server {
  return serveEndpoints(port, metrics.registry, {
    '/healthz': () =>
      Date.now() - metrics.lastReconcileMs < staleMs
        ? undefined
        : metrics.lastReconcileMs === 0
          ? 'the kernel loop has not run yet'
          : `the kernel loop has not run for ${Math.round(staleMs / 1000)}s`,
    '/readyz': reportProblem,
  });
}
