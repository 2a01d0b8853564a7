// Prometheus metrics of the controller: nodes by state per LivePatch, nodes started,
// stalls, rollbacks, reconcile latency, and whether this replica leads.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LivePatchStatus, NodeCounts } from '../api/generated/types.js';

const STATES: (keyof NodeCounts)[] = [
  'targeted',
  'patched',
  'transitioning',
  'pending',
  'stalled',
  'failed',
  'reverted',
  'replaced',
  'notApplicable',
  'unknown',
];
const COUNTED_EVENTS: Record<string, 'stalls' | 'unhealthy' | 'rollbacks'> = {
  NodeStalled: 'stalls',
  NodeUnhealthy: 'unhealthy',
  RollbackStarted: 'rollbacks',
};

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly leader = new Gauge({
    name: 'livepatch_controller_leader',
    help: '1 while this replica holds the leader lease',
    registers: [this.registry],
  });
  private readonly nodes = new Gauge({
    name: 'livepatch_nodes',
    help: 'Nodes of a LivePatch by state',
    labelNames: ['livepatch', 'state'],
    registers: [this.registry],
  });
  private readonly counters = {
    started: new Counter({
      name: 'livepatch_nodes_started_total',
      help: 'Nodes the controller started patching or unpatching',
      labelNames: ['livepatch'],
      registers: [this.registry],
    }),
    statusWrites: new Counter({
      name: 'livepatch_status_writes_total',
      help: 'Writes of LivePatch status',
      labelNames: ['livepatch'],
      registers: [this.registry],
    }),
    unhealthy: new Counter({
      name: 'livepatch_unhealthy_nodes_total',
      help: 'Nodes that failed the health gate while baking',
      labelNames: ['livepatch'],
      registers: [this.registry],
    }),
    stalls: new Counter({
      name: 'livepatch_stalls_total',
      help: 'Node transitions that stalled',
      labelNames: ['livepatch'],
      registers: [this.registry],
    }),
    rollbacks: new Counter({
      name: 'livepatch_rollbacks_total',
      help: 'Rollbacks started',
      labelNames: ['livepatch'],
      registers: [this.registry],
    }),
  };
  private readonly latency = new Histogram({
    name: 'livepatch_reconcile_duration_seconds',
    help: 'Time to reconcile one LivePatch',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor() {
    // process_resident_memory_bytes, nodejs_heap_size_used_bytes, event loop lag: what sizing the pod needs.
    collectDefaultMetrics({ register: this.registry });
  }

  observe(livePatch: string, status: LivePatchStatus, seconds: number): void {
    for (const state of STATES)
      this.nodes.set({ livepatch: livePatch, state }, status.nodes?.[state] ?? 0);
    this.latency.observe(seconds);
  }

  nodesStarted(livePatch: string, count: number): void {
    if (count) this.counters.started.inc({ livepatch: livePatch }, count);
  }

  statusWritten(livePatch: string): void {
    this.counters.statusWrites.inc({ livepatch: livePatch });
  }

  event(livePatch: string, reason: string): void {
    const counter = COUNTED_EVENTS[reason];
    if (counter) this.counters[counter].inc({ livepatch: livePatch });
  }
}
