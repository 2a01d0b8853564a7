// One live run of the benchmark: a real control plane; the controller, the
// simulated fleet and one standalone agent as separate processes, as a user
// runs them; a rollout with the seeded mix of transition times; then a stall
// and the rollback it causes. Figures come from outside the processes: /proc,
// the API server's apiserver_request_total, and the processes' /metrics.
import { freePort } from '../ports.js';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { writeSimModuleFile } from '../../agent/kernel/sim/sim-module.js';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { nodeName, type NodeName } from '../../src/api/names.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { loadKubeConfig, type KubeConfig } from '../../src/kube/config.js';
import { followLivePatch } from '../../src/kube/follow.js';
import { rawJson } from '../../src/kube/raw.js';
import { Reflector } from '../../src/kube/reflector.js';
import { mergePatch, patchStatus, PATHS } from '../../src/kube/resources.js';
import { startControlPlane } from '../controlplane/controlplane.js';
import { createLogger, type Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { runOperator, type Running } from '../operator-process.js';
import { poll } from '../wait.js';
import {
  cpuSecondsOf,
  delta,
  getText,
  label,
  memoryOf,
  samples,
  sumBy,
  type Counters,
} from './measure.js';
import { measureIdle, type IdleResult } from './idle.js';
import { assignMix, idealRolling, lowerBound } from './mix.js';

export const KERNEL = '6.1.0-26-amd64';
const SEED = 20260415;
const POOL = 'livepatch.io/pool';
/** What the chart gives the agent (charts/livepatch-operator/templates/agent-daemonset.yaml). */
export const AGENT_NODE_OPTIONS = '--jitless --max-semi-space-size=1';
/**
 * The fleet's agents run in Pods, as the chart runs them, alive by their Pods'
 * readiness and writing no heartbeat; BENCH_LIVENESS=heartbeat: agents without
 * Pods, each writing its status every 30 s.
 */
const AGENT_PODS = process.env['BENCH_LIVENESS'] !== 'heartbeat';
// Longer than the 16 s that the signal nodes need, both ways: a shorter timeout would stall their reversals too.
const STALL_TIMEOUT_S = 20;
interface ChartController {
  readonly heapPercent: number;
  readonly resources: { readonly limits: { readonly memory: string } };
}

function chartController(): ChartController {
  const values = parse(
    readFileSync(join(repositoryRoot(), 'charts/livepatch-operator/values.yaml'), 'utf8'),
  ) as { controller: ChartController };
  return values.controller;
}

/** The controller's memory limit in MiB, as the chart gives it. */
function chartMemoryLimitMiB(controller: ChartController): number {
  const limit = /^(\d+)Mi$/.exec(controller.resources.limits.memory);
  if (!limit) throw new Error('the chart gives the controller a memory limit not in Mi');
  return Number(limit[1]);
}

/** What the controller is given for a fleet size: a memory limit, and the share of it V8's heap may take. */
export interface ControllerMemory {
  readonly limitMiB: number;
  readonly heapPercent: number;
}

/**
 * The README's memory setting by fleet size (its performance section): the
 * chart's defaults up to 3,000 nodes, more above.
 */
export function controllerMemoryFor(nodes: number): ControllerMemory {
  const chart = chartController();
  if (nodes <= 3000)
    return { limitMiB: chartMemoryLimitMiB(chart), heapPercent: chart.heapPercent };
  return { limitMiB: 768, heapPercent: 50 };
}

/**
 * What the chart's pod gives the controller: the old-space ceiling Node derives
 * there from --max-old-space-size-percentage and the memory limit, given as
 * a size here, as the benchmark has no memory cgroup (where the flag would
 * take a share of the whole machine). BENCH_CONTROLLER_NODE_OPTIONS replaces it.
 */
export function controllerNodeOptions(memory: ControllerMemory): string {
  const heapMiB = Math.floor((memory.limitMiB * memory.heapPercent) / 100);
  return (
    process.env['BENCH_CONTROLLER_NODE_OPTIONS'] ??
    `--max-semi-space-size=2 --max-old-space-size=${heapMiB}`
  );
}

/** How long the idle fleet is watched (the figures are per second). */
const IDLE_SECONDS = Number(process.env['BENCH_IDLE_SECONDS'] ?? 300);

export interface RunResult extends IdleResult {
  readonly nodes: number;
  /** The memory limit the README gives the controller at this size, and the NODE_OPTIONS it makes. */
  readonly controllerMemoryLimitMiB: number;
  readonly controllerNodeOptions: string;
  readonly maxUnavailable: number;
  readonly bakeTimeSeconds: number;
  readonly makespanSeconds: number;
  readonly lowerBoundSeconds: number;
  readonly makespanRatio: number;
  readonly idealRollingSeconds: number;
  readonly overheadRatio: number;
  readonly apiWritesPerNode: number;
  readonly apiWrites: Record<string, number>;
  readonly heartbeatWrites: number;
  /** How the controller told the fleet's agents alive: their Pods' readiness, or heartbeats. */
  readonly agentLiveness: 'pods' | 'heartbeat';
  readonly apiRequestsByVerb: Record<string, number>;
  readonly livePatchStatusWrites: number;
  readonly controllerPeakRssMiB: number;
  readonly controllerCpuSeconds: number;
  readonly agentIdleRssMiB: number;
  readonly agentIdleRssMiBWithoutNodeOptions: number;
  readonly fleetPeakRssMiB: number;
  readonly fleetStartSeconds: number;
  readonly stallReactionSeconds: number;
  /** Of which: from the stall's timeout until the stalled node's report reached a watcher. */
  readonly stallReportSeconds: number;
  readonly controllerHeapUsedMiB: number;
  readonly fleetCpuSeconds: number;
  readonly rollbackMakespanSeconds: number;
  /** From a new controller's start, as a LivePatch arrives, until its first node entry: the relist at this size. */
  readonly restartToFirstActionSeconds: number;
  readonly restartedControllerPeakRssMiB: number;
}

/** The bench's processes log warnings only and keep the newest output: a 1,000-node run prints without end. */
function operator(args: readonly string[], env: Record<string, string> = {}): Running {
  return runOperator(args, { LOG_LEVEL: 'warn', ...env }, { keepChars: 20_000 });
}

const pid = (p: Running): number => p.child.pid ?? 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function limited<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: 32 }, lane));
}

async function createNode(kc: KubeConfig, name: string): Promise<void> {
  const now = new Date().toISOString();
  await rawJson(kc, 'POST', PATHS.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name } });
  await patchStatus(
    kc,
    `${PATHS.nodes}/${name}`,
    {
      nodeInfo: { kernelVersion: KERNEL },
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'bench',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    },
    'livepatch-fleet-simulator',
  );
}

/** One agent process on a node of its own, left idle; its RSS after `settleMs`. */
async function idleAgentRss(
  kc: KubeConfig,
  kubeconfig: string,
  nodeOptions: string,
): Promise<number> {
  const name = `bench-idle-${nodeOptions ? 'lean' : 'plain'}`;
  await createNode(kc, name);
  const dir = await mkdtemp(join(tmpdir(), 'bench-agent-'));
  const agent = operator(
    [
      'agent',
      '--backend',
      'simulator',
      '--node',
      name,
      '--kubeconfig',
      kubeconfig,
      '--module-dir',
      dir,
      '--metrics-port',
      String(await freePort()),
    ],
    { NODE_OPTIONS: nodeOptions },
  );
  try {
    await waitForLpn(kc, name);
    await sleep(20_000);
    return (await memoryOf(pid(agent))).rss;
  } finally {
    await agent.stop();
  }
}

async function waitForLpn(kc: KubeConfig, name: string): Promise<void> {
  const reported = await poll(
    () => rawJson<LivePatchNode>(kc, 'GET', `${PATHS.livePatchNodes}/${name}`),
    (lpn) => Boolean(lpn.status?.heartbeatTime),
    60_000,
    { intervalMs: 200, retryErrors: true },
  );
  if (!reported.ok) throw new Error(`the agent of ${name} never reported`);
}

interface Snapshot {
  readonly at: number;
  readonly requests: Counters;
  readonly heartbeats: number;
  readonly controllerCpu: number;
  readonly fleetCpu: number;
}

async function snapshot(
  kc: KubeConfig,
  fleetMetrics: string,
  controller: Running,
  fleetProc: Running,
): Promise<Snapshot> {
  const [api, fleet, cpu, fleetCpu] = await Promise.all([
    getText(`${kc.server}/metrics`, kc),
    getText(fleetMetrics),
    cpuSecondsOf(pid(controller)),
    cpuSecondsOf(pid(fleetProc)),
  ]);
  const writes = samples(fleet, 'livepatch_agent_status_writes_total');
  return {
    at: Date.now(),
    requests: samples(api, 'apiserver_request_total'),
    heartbeats: [...writes]
      .filter(([l]) => label(l, 'why') === 'heartbeat')
      .reduce((a, [, v]) => a + v, 0),
    controllerCpu: cpu,
    fleetCpu,
  };
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

function writesOf(requests: Counters): Record<string, number> {
  const writes = new Map([...requests].filter(([l]) => WRITE_VERBS.has(label(l, 'verb'))));
  return sumBy(writes, (l) => {
    const sub = label(l, 'subresource');
    return `${label(l, 'verb')} ${label(l, 'resource')}${sub ? `/${sub}` : ''}`;
  });
}

function livePatch(
  name: string,
  module: { path: string; sha256: string },
  stall: { timeout: string },
): object {
  return {
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name },
    spec: {
      patchName: `livepatch_${name.replaceAll('-', '_')}`,
      nodeSelector: { matchLabels: { [POOL]: 'bench' } },
      kernels: [{ release: KERNEL, module: { hostPath: module.path, sha256: module.sha256 } }],
      rollout: { maxUnavailable: '10%', bakeTime: '0s' },
      stall: { timeout: stall.timeout, action: 'Rollback' },
    },
  };
}

/** The stall: the first node of the rollout order never switches; Rollback must follow its node guard. */
async function stallAndRollback(
  kc: KubeConfig,
  names: readonly NodeName[],
  dir: string,
  log: Logger,
  restart: () => number,
): Promise<{ reaction: number; agentPart: number; rollback: number; firstAction: number }> {
  const name = 'bench-stall';
  const stuck = rolloutOrder(name, names)[0] ?? '';
  await mergePatch(
    kc,
    `${PATHS.nodes}/${stuck}`,
    { metadata: { annotations: { 'sim.livepatch.io/stuck-tasks': '1' } } },
    'livepatch-fleet-simulator',
  );
  const module = await writeSimModuleFile(dir, { name: 'livepatch_bench_stall', kernel: KERNEL });
  let firstWrite = 0;
  let firstEntry = 0;
  // The stuck node's own report of when its transition began (the reversal later reports its own start).
  let started = '';
  let reported = 0;
  const watchStuck = (lpn: LivePatchNode | undefined): void => {
    const observed = lpn?.status?.patches?.find((p) => p.livePatch === name);
    if (!started && observed?.phase === 'Transitioning')
      started = observed.transitionStartTime ?? '';
    // The node guard's first report of the stall: Reversing (then Stalled once reversed).
    if (!reported && started && observed?.phase !== 'Transitioning') reported = Date.now();
  };
  const lpns: Reflector<LivePatchNode> = new Reflector<LivePatchNode>(kc, {
    path: PATHS.livePatchNodes,
    log,
    onChange: (node) => {
      const lpn = lpns.get(node);
      if (node === stuck) watchStuck(lpn);
      const entry = lpn?.spec.patches?.find((p) => p.livePatch === name);
      if (!firstEntry && entry) firstEntry = Date.now();
      if (!firstWrite && entry?.state === 'Disabled') firstWrite = Date.now();
    },
  });
  lpns.start();
  await lpns.waitForSync();
  // A new controller starts as the LivePatch arrives: its first entry is the time a restart costs at this size.
  const restartedAt = restart();
  await rawJson(
    kc,
    'POST',
    PATHS.livePatches,
    livePatch(name, module, { timeout: `${STALL_TIMEOUT_S}s` }),
  );
  await followLivePatch(kc, name, log, (lp) => lp.status?.phase === 'RolledBack');
  const rolledBack = Date.now();
  lpns.stop();
  const deadline = Date.parse(started) + STALL_TIMEOUT_S * 1000;
  return {
    reaction: (firstWrite - deadline) / 1000,
    agentPart: (reported - deadline) / 1000,
    rollback: (rolledBack - firstWrite) / 1000,
    firstAction: (firstEntry - restartedAt) / 1000,
  };
}

const stage = (what: string): void => {
  console.log(`  ${new Date().toISOString().slice(11, 19)} ${what}`);
};

export async function liveRun(nodeCount: number): Promise<RunResult> {
  const log = createLogger({ component: 'bench', format: 'text', level: 'error' });
  const plane = await startControlPlane({ log });
  const kc = loadKubeConfig(plane.kubeconfig);
  const procs: Running[] = [];
  const memory = controllerMemoryFor(nodeCount);
  const controllerOptions = controllerNodeOptions(memory);
  try {
    const fleetPort = await freePort();
    const fleetStart = Date.now();
    const fleet = operator([
      'fleet',
      '--nodes',
      String(nodeCount),
      '--kernel',
      KERNEL,
      '--prefix',
      'bench',
      '--label',
      `${POOL}=bench`,
      '--kubeconfig',
      plane.kubeconfig,
      '--metrics-port',
      String(fleetPort),
      '--keep',
      '--realistic-nodes',
      ...(AGENT_PODS ? ['--pods', 'default'] : []),
    ]);
    procs.push(fleet);
    await fleet.waitFor(/fleet ready/, 30 * 60_000);
    const fleetStartSeconds = (Date.now() - fleetStart) / 1000;
    stage(`fleet of ${nodeCount} ready in ${fleetStartSeconds.toFixed(0)} s`);
    const names = Array.from({ length: nodeCount }, (_, i) =>
      nodeName(`bench-${String(i).padStart(3, '0')}`),
    );
    const mix = assignMix(names, SEED);
    await limited(names, (n) =>
      mergePatch(
        kc,
        `${PATHS.nodes}/${n}`,
        { metadata: { annotations: mix.get(n)?.annotations } },
        'livepatch-fleet-simulator',
      ),
    );
    stage('measuring an idle agent');
    const agentLean = await idleAgentRss(kc, plane.kubeconfig, AGENT_NODE_OPTIONS);
    const agentPlain = await idleAgentRss(kc, plane.kubeconfig, '');
    const controllerPort = await freePort();
    const startController = (identity: string): Running => {
      const started = operator(
        [
          'controller',
          '--kubeconfig',
          plane.kubeconfig,
          '--metrics-port',
          String(controllerPort),
          '--lease-namespace',
          'default',
          '--agent-namespace',
          'default',
          '--identity',
          identity,
        ],
        { LOG_LEVEL: 'info', NODE_OPTIONS: controllerOptions },
      );
      procs.push(started);
      return started;
    };
    const controller = startController('bench');
    await controller.waitFor(/became the leader/, 10 * 60_000);
    await sleep(3000);
    const fleetMetrics = `http://127.0.0.1:${fleetPort}/metrics`;
    const module = await writeSimModuleFile(plane.dir, { name: 'livepatch_bench', kernel: KERNEL });
    stage('rollout');
    const before = await snapshot(kc, fleetMetrics, controller, fleet);
    const start = Date.now();
    await rawJson(kc, 'POST', PATHS.livePatches, livePatch('bench', module, { timeout: '60s' }));
    const done: LivePatch = await followLivePatch(
      kc,
      'bench',
      log,
      (lp) => lp.status?.phase === 'Complete',
    );
    const makespan = (Date.now() - start) / 1000;
    const after = await snapshot(kc, fleetMetrics, controller, fleet);
    if (done.status?.summary !== `${nodeCount}/${nodeCount}`)
      throw new Error(`not every node patched: ${done.status?.summary ?? ''}`);
    const controllerMemory = await memoryOf(pid(controller));
    const controllerMetrics = await getText(`http://127.0.0.1:${controllerPort}/metrics`);
    const controllerHeap =
      (samples(controllerMetrics, 'nodejs_heap_size_used_bytes').get('') ?? 0) / 1024 / 1024;
    const requests = delta(before.requests, after.requests);
    const apiWrites = writesOf(requests);
    const heartbeatWrites = after.heartbeats - before.heartbeats;
    const counted = [
      'PATCH livepatchnodes',
      'PATCH livepatchnodes/status',
      'PATCH livepatches/status',
    ];
    const rolloutWrites = counted.reduce((a, k) => a + (apiWrites[k] ?? 0), 0) - heartbeatWrites;
    const slots = Math.ceil(nodeCount / 10);
    const times = new Map(names.map((n) => [n, mix.get(n)?.seconds ?? 0]));
    const bound = lowerBound([...times.values()], slots, 0);
    const ideal = idealRolling('bench', times, slots, 0);
    stage(`rollout Complete in ${makespan.toFixed(1)} s; idle for ${IDLE_SECONDS} s`);
    const idle = await measureIdle(
      kc,
      {
        controllerMetrics: `http://127.0.0.1:${controllerPort}/metrics`,
        controllerPid: pid(controller),
        fleetPid: pid(fleet),
      },
      nodeCount,
      IDLE_SECONDS,
    );
    stage('controller restart, stall and rollback');
    // SIGTERM releases the leader lease, as a rolling update of the Deployment does.
    await controller.stop();
    let restarted: Running | undefined;
    const stall = await stallAndRollback(kc, names, plane.dir, log, () => {
      restarted = startController('bench-restarted');
      return Date.now();
    });
    const restartedMemory = restarted ? await memoryOf(pid(restarted)) : undefined;
    const fleetMemory = await memoryOf(pid(fleet));
    return {
      nodes: nodeCount,
      controllerMemoryLimitMiB: memory.limitMiB,
      controllerNodeOptions: controllerOptions,
      maxUnavailable: slots,
      bakeTimeSeconds: 0,
      makespanSeconds: round(makespan),
      lowerBoundSeconds: round(bound),
      makespanRatio: round(makespan / bound, 3),
      idealRollingSeconds: round(ideal),
      overheadRatio: round(makespan / ideal, 3),
      apiWritesPerNode: round(rolloutWrites / nodeCount, 3),
      apiWrites,
      heartbeatWrites,
      agentLiveness: AGENT_PODS ? 'pods' : 'heartbeat',
      apiRequestsByVerb: sumBy(requests, (l) => label(l, 'verb')),
      livePatchStatusWrites: apiWrites['PATCH livepatches/status'] ?? 0,
      controllerPeakRssMiB: round(controllerMemory.peak, 1),
      controllerCpuSeconds: round(after.controllerCpu - before.controllerCpu),
      agentIdleRssMiB: round(agentLean, 1),
      agentIdleRssMiBWithoutNodeOptions: round(agentPlain, 1),
      fleetPeakRssMiB: round(fleetMemory.peak, 1),
      fleetStartSeconds: round(fleetStartSeconds),
      stallReactionSeconds: round(stall.reaction, 3),
      stallReportSeconds: round(stall.agentPart, 3),
      controllerHeapUsedMiB: round(controllerHeap, 1),
      fleetCpuSeconds: round(after.fleetCpu - before.fleetCpu),
      rollbackMakespanSeconds: round(stall.rollback),
      ...idle,
      restartToFirstActionSeconds: round(stall.firstAction),
      restartedControllerPeakRssMiB: round(restartedMemory?.peak ?? 0, 1),
    };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await plane.stop();
  }
}

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
