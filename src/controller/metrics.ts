// Prometheus metrics of the controller. Two kinds: the series every
// controller-runtime operator exposes, under the same names, labels and
// meanings, so the dashboards and alerts written for those work here
// (controller_runtime_*, workqueue_*, rest_client_requests_total,
// leader_election_master_status); and the LivePatches' own: a livepatch_info
// per LivePatch, its nodes by state, what the controller did for it. A
// LivePatch's series go when it is deleted, so a cluster that churns through
// LivePatches does not keep a series for each one it ever had.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LivePatchPhase, LivePatchStatus, NodeCounts } from '../api/generated/types.js';
import type { ApiRequest } from '../kube/requests.js';
import type { QueueObserver, ReconcileResult } from './queue.js';

/** The `controller` label of the controller-runtime series, and the work queue's `name`. */
export const CONTROLLER_NAME = 'livepatch';

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
const RECONCILE_RESULTS: ReconcileResult[] = ['success', 'error', 'requeue_after'];

/** What the scrape reads of the work queue when it happens. */
export interface QueueGauges {
  depth(): number;
  busyFor(): number;
}

/** What livepatch_info last said of one LivePatch, so that a change of phase replaces the series. */
interface Info {
  readonly patch_name: string;
  readonly phase: LivePatchPhase | 'Unknown';
}

export class ControllerMetrics implements QueueObserver {
  readonly registry = new Registry();
  private queue: QueueGauges | undefined;
  private readonly controller = { controller: CONTROLLER_NAME };
  private readonly workqueue = { controller: CONTROLLER_NAME, name: CONTROLLER_NAME };
  private readonly infos = new Map<string, Info>();

  private readonly leaderGauges = {
    own: new Gauge({
      name: 'livepatch_controller_leader',
      help: '1 while this replica holds the leader lease',
      registers: [this.registry],
    }),
    shared: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers: [this.registry],
    }),
  };
  private readonly runtime = {
    reconciles: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers: [this.registry],
    }),
    errors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers: [this.registry],
    }),
    time: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    }),
    workers: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers: [this.registry],
    }),
    adds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['controller', 'name'],
      registers: [this.registry],
    }),
    retries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['controller', 'name'],
      registers: [this.registry],
    }),
    watchEvents: new Counter({
      name: 'livepatch_controller_watch_events_total',
      help: 'Watch events the controller received, by resource and type: its share of the API server while idle',
      labelNames: ['resource', 'type'],
      registers: [this.registry],
    }),
    requests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
      registers: [this.registry],
    }),
  };
  private readonly nodes = new Gauge({
    name: 'livepatch_nodes',
    help: 'Nodes of a LivePatch by state',
    labelNames: ['livepatch', 'state'],
    registers: [this.registry],
  });
  private readonly info = new Gauge({
    name: 'livepatch_info',
    help: 'One per LivePatch, always 1: its patch name and phase as labels',
    labelNames: ['livepatch', 'patch_name', 'phase'],
    registers: [this.registry],
  });
  private readonly agents = new Gauge({
    name: 'livepatch_agents',
    help: 'Node agents by whether their heartbeat reaches the controller (reporting) or stopped (silent)',
    labelNames: ['state'],
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

  /** `leaseName`: the Lease elected on, the `name` of leader_election_master_status. */
  constructor(private readonly leaseName: string) {
    // process_resident_memory_bytes, nodejs_heap_size_used_bytes, event loop lag: what sizing the pod needs.
    collectDefaultMetrics({ register: this.registry });
    this.setLeader(false);
    // One worker: reconciles are serial (queue.ts says why).
    this.runtime.workers.set(this.controller, 1);
    for (const result of RECONCILE_RESULTS)
      this.runtime.reconciles.inc({ ...this.controller, result }, 0);
    this.runtime.errors.inc(this.controller, 0);
    this.runtime.adds.inc(this.workqueue, 0);
    this.runtime.retries.inc(this.workqueue, 0);
    for (const state of ['reporting', 'silent']) this.agents.set({ state }, 0);
    const read = (f: (q: QueueGauges) => number): (() => number) => {
      return () => (this.queue ? f(this.queue) : 0);
    };
    this.queueGauge(
      'workqueue_depth',
      'Current depth of workqueue',
      read((q) => q.depth()),
    );
    // One worker, so the longest-running processor is the work still unfinished.
    const busy = read((q) => q.busyFor() / 1000);
    this.queueGauge(
      'workqueue_longest_running_processor_seconds',
      'How many seconds has the longest running processor for workqueue been running.',
      busy,
    );
    this.queueGauge(
      'workqueue_unfinished_work_seconds',
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
      busy,
    );
  }

  /** The queue whose depth and busy worker the scrape reads. */
  watchQueue(queue: QueueGauges): void {
    this.queue = queue;
  }

  setLeader(leading: boolean): void {
    this.leaderGauges.own.set(leading ? 1 : 0);
    this.leaderGauges.shared.set({ name: this.leaseName }, leading ? 1 : 0);
  }

  added(): void {
    this.runtime.adds.inc(this.workqueue);
  }

  retried(): void {
    this.runtime.retries.inc(this.workqueue);
  }

  reconciled(result: ReconcileResult, seconds: number): void {
    this.runtime.reconciles.inc({ ...this.controller, result });
    if (result === 'error') this.runtime.errors.inc(this.controller);
    this.runtime.time.observe(this.controller, seconds);
  }

  apiRequest(request: ApiRequest): void {
    this.runtime.requests.inc({ code: request.code, method: request.method, host: request.host });
  }

  /** A counter of one resource's watch events, for its Reflector's onEvent. */
  watchEvents(resource: string): (type: string) => void {
    return (type) => {
      this.runtime.watchEvents.inc({ resource, type });
    };
  }

  /** Agents whose heartbeat the controller saw change within the stale time, and those it did not. */
  agentHeartbeats(reporting: number, silent: number): void {
    this.agents.set({ state: 'reporting' }, reporting);
    this.agents.set({ state: 'silent' }, silent);
  }

  observe(livePatch: string, patchName: string, status: LivePatchStatus, seconds: number): void {
    for (const state of STATES)
      this.nodes.set({ livepatch: livePatch, state }, status.nodes?.[state] ?? 0);
    const info: Info = { patch_name: patchName, phase: status.phase ?? 'Unknown' };
    const before = this.infos.get(livePatch);
    if (before && (before.phase !== info.phase || before.patch_name !== info.patch_name))
      this.info.remove({ livepatch: livePatch, ...before });
    this.info.set({ livepatch: livePatch, ...info }, 1);
    this.infos.set(livePatch, info);
    this.latency.observe(seconds);
  }

  /** A LivePatch is gone: its series go with it. */
  forget(livePatch: string): void {
    const before = this.infos.get(livePatch);
    if (before) this.info.remove({ livepatch: livePatch, ...before });
    this.infos.delete(livePatch);
    for (const state of STATES) this.nodes.remove({ livepatch: livePatch, state });
    for (const counter of Object.values(this.counters)) counter.remove({ livepatch: livePatch });
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

  private queueGauge(name: string, help: string, value: () => number): void {
    const labels = this.workqueue;
    new Gauge({
      name,
      help,
      labelNames: ['controller', 'name'],
      registers: [this.registry],
      collect() {
        this.set(labels, value());
      },
    });
  }
}
