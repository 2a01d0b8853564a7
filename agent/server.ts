// /healthz, /readyz and /metrics for one agent: Prometheus gauges of what the
// node's kernel has. Liveness follows the kernel loop (the stall guard
// ticking), never the API server: an outage of the control plane must not
// restart every agent exactly when they guard alone. Readiness follows both,
// sooner: the kernel loop ticking and the API server hearing the agent. The
// controller reads an agent Pod's readiness as the agent being alive.
import type { Server } from 'node:http';
import type { LivePatchNodeStatus, NodePatchPhase } from '../src/api/generated/types.js';
import { serveEndpoints } from '../src/observability/endpoints.js';
import { TextMetrics } from '../src/observability/text-metrics.js';
import type { KernelActionDone } from './pass/pass-runner.js';

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

/** Kernel actions by kind and outcome: a fixed, small set of series. */
type ActionResult = 'ok' | 'failed';

export class AgentMetrics {
  readonly registry = new TextMetrics();
  lastReconcileMs = 0;
  /** The kernel release the patch gauges are labelled with; a new one (never within one boot) replaces them. */
  private release: string | undefined;

  constructor() {
    const r = this.registry;
    r.define(
      'livepatch_agent_patches',
      'gauge',
      'Managed patches on this node by phase, labelled with the running kernel release',
    );
    r.define(
      'livepatch_agent_transition_in_progress',
      'gauge',
      '1 while a livepatch transition runs on this node',
    );
    r.define('livepatch_agent_reconciles_total', 'counter', 'Reconcile passes of the node agent');
    r.define(
      'livepatch_agent_last_pass_timestamp_seconds',
      'gauge',
      'When the kernel loop last finished a pass (Unix time)',
    );
    r.define(
      'livepatch_agent_kernel_actions_total',
      'counter',
      'Actions of the kernel loop by kind (fetch, load, enable, disable, reverse_stall, force, unload) and result (ok, failed)',
    );
    r.define(
      'livepatch_agent_last_action_timestamp_seconds',
      'gauge',
      'When the kernel loop last took each kind of action with each result (Unix time): the newest is what it did last',
    );
    r.define(
      'livepatch_agent_status_writes_total',
      'counter',
      'Writes of LivePatchNode status, by why: a change, or a heartbeat alone',
    );
  }

  observe(status: LivePatchNodeStatus, actions: readonly KernelActionDone[], now: number): void {
    const release = status.kernelRelease ?? '';
    if (release !== this.release) this.registry.clear('livepatch_agent_patches');
    this.release = release;
    for (const phase of Object.keys(PHASES) as NodePatchPhase[]) {
      const count = (status.patches ?? []).filter((p) => p.phase === phase).length;
      this.registry.set('livepatch_agent_patches', count, { phase, kernel_release: release });
    }
    this.registry.set('livepatch_agent_transition_in_progress', status.transitioning ? 1 : 0);
    this.registry.inc('livepatch_agent_reconciles_total');
    this.registry.set('livepatch_agent_last_pass_timestamp_seconds', now / 1000);
    for (const { action, failed } of actions) {
      const labels = { action, result: (failed ? 'failed' : 'ok') satisfies ActionResult };
      this.registry.inc('livepatch_agent_kernel_actions_total', labels);
      this.registry.set('livepatch_agent_last_action_timestamp_seconds', now / 1000, labels);
    }
    this.lastReconcileMs = now;
  }

  statusWritten(why: 'change' | 'heartbeat'): void {
    this.registry.inc('livepatch_agent_status_writes_total', { why });
  }
}

/**
 * Serves until closed. /healthz: the kernel loop ran within `staleMs`.
 * /readyz: `readinessProblem` (the kernel loop stuck, or the API server not
 * hearing the agent) says nothing.
 */
export function serveAgentEndpoints(
  metrics: AgentMetrics,
  port: number,
  staleMs: number,
  readinessProblem: () => string | undefined,
): Server {
  return serveEndpoints(port, metrics.registry, {
    '/healthz': () =>
      Date.now() - metrics.lastReconcileMs < staleMs
        ? undefined
        : metrics.lastReconcileMs === 0
          ? 'the kernel loop has not run yet'
          : `the kernel loop has not run for ${Math.round(staleMs / 1000)}s`,
    '/readyz': readinessProblem,
  });
}
