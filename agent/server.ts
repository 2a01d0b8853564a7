// /healthz, /readyz and /metrics for one agent: Prometheus gauges of what the
// node's kernel has. Liveness follows the kernel loop (the stall guard
// ticking), never the API server: an outage of the control plane must not
// restart every agent exactly when they guard alone. Readiness follows the
// status reaching the API server.
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { NODE_PATCH_PHASES } from '../src/api/schema/livepatchnode.js';
import type { LivePatchNodeStatus } from '../src/api/generated/types.js';
import { serveEndpoints } from '../src/observability/endpoints.js';

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly phases = new Gauge({
    name: 'livepatch_agent_patches',
    help: 'Managed patches on this node by phase',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  private readonly transitioning = new Gauge({
    name: 'livepatch_agent_transition_in_progress',
    help: '1 while a livepatch transition runs on this node',
    registers: [this.registry],
  });
  private readonly reconciles = new Counter({
    name: 'livepatch_agent_reconciles_total',
    help: 'Reconcile passes of the node agent',
    registers: [this.registry],
  });
  lastReconcileMs = 0;

  observe(status: LivePatchNodeStatus, now: number): void {
    for (const phase of NODE_PATCH_PHASES) {
      this.phases.set({ phase }, (status.patches ?? []).filter((p) => p.phase === phase).length);
    }
    this.transitioning.set(status.transitioning ? 1 : 0);
    this.reconciles.inc();
    this.lastReconcileMs = now;
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
