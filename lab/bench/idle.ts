// What an idle fleet costs, measured after the rollout is Complete and nothing
// changes: the API writes per second (the operator's apart from the ones a
// kubelet makes anyway: Node and Pod status), the watch events the controller
// receives, and the controller's CPU. Figures come from the API server's
// apiserver_request_total and the controller's own /metrics and /proc.
import type { KubeConfig } from '../../src/kube/config.js';
import { cpuSecondsOf, delta, getText, label, samples, sumBy, type Counters } from './measure.js';

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);
/** Resources a kubelet writes whatever the operator does (the fleet simulator writes them for it). */
const KUBELET_RESOURCES = new Set(['nodes', 'pods']);

export interface IdleResult {
  readonly idleSeconds: number;
  /** Writes by the operator's processes (agents, controller) per second, per 1,000 nodes. */
  readonly idleOperatorWritesPerSecondPer1000Nodes: number;
  readonly idleOperatorWrites: Record<string, number>;
  /** Writes a kubelet makes anyway (Node and Pod status), per second per 1,000 nodes: reported apart. */
  readonly idleKubeletWritesPerSecondPer1000Nodes: number;
  readonly idleControllerWatchEventsPerSecond: number;
  /** The controller's CPU use while idle, in percent of one core. */
  readonly idleControllerCpuPercent: number;
  /** The fleet simulator's, all its agents together: what the benchmark's host pays for the fleet. */
  readonly idleFleetCpuPercent: number;
}

interface Reading {
  readonly at: number;
  readonly requests: Counters;
  readonly events: number;
  readonly cpu: number;
  readonly fleetCpu: number;
}

async function read(
  kc: KubeConfig,
  controllerMetrics: string,
  pid: number,
  fleetPid: number,
): Promise<Reading> {
  const [api, controller, cpu, fleetCpu] = await Promise.all([
    getText(`${kc.server}/metrics`, kc),
    getText(controllerMetrics),
    cpuSecondsOf(pid),
    cpuSecondsOf(fleetPid),
  ]);
  const events = [...samples(controller, 'livepatch_controller_watch_events_total').values()];
  return {
    at: Date.now(),
    requests: samples(api, 'apiserver_request_total'),
    events: events.reduce((a, v) => a + v, 0),
    cpu,
    fleetCpu,
  };
}

const writeKey = (l: string): string => {
  const sub = label(l, 'subresource');
  return `${label(l, 'verb')} ${label(l, 'resource')}${sub ? `/${sub}` : ''}`;
};

/** Watches an idle fleet for `seconds` and says what it cost. */
export async function measureIdle(
  kc: KubeConfig,
  watched: {
    readonly controllerMetrics: string;
    readonly controllerPid: number;
    readonly fleetPid: number;
  },
  nodes: number,
  seconds: number,
): Promise<IdleResult> {
  const { controllerMetrics, controllerPid, fleetPid } = watched;
  const before = await read(kc, controllerMetrics, controllerPid, fleetPid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await read(kc, controllerMetrics, controllerPid, fleetPid);
  const elapsed = (after.at - before.at) / 1000;
  const writes = new Map(
    [...delta(before.requests, after.requests)].filter(([l]) => WRITE_VERBS.has(label(l, 'verb'))),
  );
  const byKubelet = (l: string): boolean => KUBELET_RESOURCES.has(label(l, 'resource'));
  const operator = sumBy(new Map([...writes].filter(([l]) => !byKubelet(l))), writeKey);
  const kubelet = sumBy(new Map([...writes].filter(([l]) => byKubelet(l))), writeKey);
  const total = (r: Record<string, number>): number => Object.values(r).reduce((a, v) => a + v, 0);
  const per1000 = (n: number): number => round((n / elapsed) * (1000 / nodes), 3);
  return {
    idleSeconds: round(elapsed, 1),
    idleOperatorWritesPerSecondPer1000Nodes: per1000(total(operator)),
    idleOperatorWrites: operator,
    idleKubeletWritesPerSecondPer1000Nodes: per1000(total(kubelet)),
    idleControllerWatchEventsPerSecond: round((after.events - before.events) / elapsed, 2),
    idleControllerCpuPercent: round(((after.cpu - before.cpu) / elapsed) * 100, 2),
    idleFleetCpuPercent: round(((after.fleetCpu - before.fleetCpu) / elapsed) * 100, 2),
  };
}

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
