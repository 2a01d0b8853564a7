// An agent cut off from the API server: SIGSTOP past the controller's
// heartbeat window (90 s), then SIGCONT. One stopped node (X) is in a
// transition that stalls; another (U) is idle. While they are silent the
// controller counts both unknown and starts neither for a new LivePatch; when
// they come back, X's own guard reverses the overdue stall (the controller
// never saw it), and everything converges: the stalling LivePatch rolls back,
// the new one completes on every node.
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import { AGENT_HEARTBEAT_MS, AGENT_STALE_MS } from '../../../src/api/heartbeat.js';
import { rawJson } from '../../../src/kube/raw.js';
import { PATHS } from '../../../src/kube/resources.js';
import type { Running } from '../../operator-process.js';
import {
  annotateNode,
  createLivePatch,
  labelNode,
  patchNameOf,
  readLivePatch,
  until,
  KERNEL,
} from '../api.js';
import { startChaosCluster, type ChaosCluster } from '../cluster.js';
import { readKernel } from '../kernels.js';
import { violationMessages, type ScenarioResult } from '../report.js';
import { Replicas } from '../replicas.js';
import { Sampler } from '../sampler.js';
import { countsText, judge, seconds, type ScenarioContext } from '../scenario.js';

const NODES = 4;
const POOL = 'livepatch.io/pool';
/** Past the heartbeat window, plus one more heartbeat and some slack: 150 s. */
const SILENT_WAIT_MS = AGENT_STALE_MS + AGENT_HEARTBEAT_MS + 30_000;
const CONVERGE_TIMEOUT_MS = 120_000;

const phaseIs =
  (phase: string) =>
  (lp: LivePatch | undefined): boolean =>
    lp?.status?.phase === phase && lp.status.observedGeneration === lp.metadata.generation;

async function specHas(cluster: ChaosCluster, node: string, livePatch: string): Promise<boolean> {
  const lpn = await rawJson<LivePatchNode>(cluster.kc, 'GET', `${PATHS.livePatchNodes}/${node}`);
  return lpn.spec.patches?.some((p) => p.livePatch === livePatch) ?? false;
}

/** The stopped agent's guard reversed the stall itself: its own log says so. */
const guardReversed = (agent: Running): boolean =>
  agent
    .output()
    .split('\n')
    .some((l) => l.includes('"writing enabled=0"') && l.includes('"why":"stalled"'));

interface Stop {
  readonly cluster: ChaosCluster;
  readonly agents: Map<string, Running>;
  /** The node whose transition stalls while its agent is stopped. */
  readonly x: string;
  /** The idle node stopped with it. */
  readonly u: string;
  readonly stalling: string;
  readonly fresh: string;
}

const signal = (s: Stop, sig: NodeJS.Signals): void => {
  for (const node of [s.x, s.u]) s.agents.get(node)?.child.kill(sig);
};

/** X starts a transition that cannot finish; then both agents stop. False if it never started. */
async function stallThenStop(s: Stop): Promise<boolean> {
  const kc = s.cluster.kc;
  await labelNode(kc, s.x, { [POOL]: s.stalling });
  await annotateNode(kc, s.x, { 'sim.livepatch.io/stuck-tasks': '1' });
  await createLivePatch(kc, s.stalling, {
    nodeSelector: { matchLabels: { [POOL]: s.stalling } },
    stall: { timeout: '20s', action: 'Rollback' },
    failureBudget: 0,
  });
  const transitioning = await until(
    () => readKernel(s.x, s.cluster.kernelFile(s.x), KERNEL),
    (k) => k.transition?.patch === patchNameOf(s.stalling) && k.transition.target === 1,
    30_000,
  );
  if (transitioning.ok) signal(s, 'SIGSTOP');
  return transitioning.ok;
}

/** While both are silent: counted unknown, and neither started for a LivePatch created meanwhile. */
async function whileSilent(s: Stop): Promise<string[]> {
  const kc = s.cluster.kc;
  const problems: string[] = [];
  const unknown = await until(
    () => readLivePatch(kc, s.stalling),
    (lp) => (lp?.status?.nodes?.unknown ?? 0) === 1,
    SILENT_WAIT_MS,
    1000,
  );
  if (!unknown.ok)
    problems.push(
      `node ${s.x}: silent, but ${s.stalling} never counted it unknown (${countsText(unknown.last?.status?.nodes)})`,
    );
  await createLivePatch(kc, s.fresh, { rollout: { maxUnavailable: 1 } });
  const others = await until(
    () => readLivePatch(kc, s.fresh),
    (lp) => (lp?.status?.nodes?.patched ?? 0) === NODES - 2,
    60_000,
  );
  const counted = others.last?.status?.nodes?.unknown ?? 0;
  if (counted !== 2)
    problems.push(
      `nodes ${s.x} and ${s.u}: silent, but ${s.fresh} counts ${counted} unknown (${countsText(others.last?.status?.nodes)})`,
    );
  for (const node of [s.x, s.u])
    if (await specHas(s.cluster, node, s.fresh))
      problems.push(`node ${node}: started for ${s.fresh} while its agent was silent`);
  return problems;
}

/** After SIGCONT: X's own guard reverses the overdue stall, the stalling LivePatch rolls back, the new one completes. */
async function afterCont(
  s: Stop,
): Promise<{ problems: string[]; reached: number; recovery?: number }> {
  const kc = s.cluster.kc;
  // New transitions on X go through; the one in its kernel keeps its stuck task.
  await annotateNode(kc, s.x, { 'sim.livepatch.io/stuck-tasks': null });
  const contAt = Date.now();
  signal(s, 'SIGCONT');
  const [back, done] = await Promise.all([
    until(() => readLivePatch(kc, s.stalling), phaseIs('RolledBack'), CONVERGE_TIMEOUT_MS),
    until(() => readLivePatch(kc, s.fresh), phaseIs('Complete'), CONVERGE_TIMEOUT_MS),
  ]);
  const recovery = (Date.now() - contAt) / 1000;
  const problems: string[] = [];
  const xAgent = s.agents.get(s.x);
  if (xAgent && !guardReversed(xAgent))
    problems.push(`node ${s.x}: its agent did not reverse the overdue stall itself after SIGCONT`);
  for (const [r, name, phase] of [
    [back, s.stalling, 'RolledBack'],
    [done, s.fresh, 'Complete'],
  ] as const)
    if (!r.ok)
      problems.push(
        `${name} did not reach ${phase}: ${r.last?.status?.phase ?? 'no phase'} (${countsText(r.last?.status?.nodes)})`,
      );
  await labelNode(kc, s.x, { [POOL]: null });
  const reached = Number(back.ok) + Number(done.ok);
  return { problems, reached, ...(reached === 2 ? { recovery } : {}) };
}

async function oneStop(
  s: Stop,
): Promise<{ problems: string[]; reached: number; recovery?: number }> {
  if (!(await stallThenStop(s)))
    return { problems: [`node ${s.x}: ${s.stalling} never started its transition`], reached: 0 };
  const silent = await whileSilent(s);
  const after = await afterCont(s);
  return { ...after, problems: [...silent, ...after.problems] };
}

export async function agentStop(ctx: ScenarioContext): Promise<ScenarioResult> {
  const t0 = Date.now();
  const cluster = await startChaosCluster();
  try {
    const nodes = Array.from({ length: NODES }, (_, i) => `as-${i}`);
    await cluster.registerNodes(nodes);
    const agents = new Map(nodes.map((n) => [n, cluster.startAgent(n)]));
    for (const a of agents.values()) await a.waitFor(/agent running/, 60_000);
    for (const node of nodes)
      await annotateNode(cluster.kc, node, { 'sim.livepatch.io/transition-seconds': '2' });
    const sampler = new Sampler(cluster.kc);
    sampler.start();
    const replicas = new Replicas(cluster, 'as-controller');
    await replicas.scaleTo(2);
    await replicas.leader();
    const problems: string[] = [];
    const recoveries: number[] = [];
    let reached = 0;
    // Both LivePatches of each run roll out one node at a time (the default, and `fresh` says so).
    const limits = new Map<string, number>();
    for (let n = 1; n <= ctx.faults; n++) {
      limits.set(`as-${n}-stall`, 1).set(`as-${n}-all`, 1);
      const x = ctx.rng.pick(nodes);
      const u = ctx.rng.pick(nodes.filter((node) => node !== x));
      const out = await oneStop({
        cluster,
        agents,
        x,
        u,
        stalling: `as-${n}-stall`,
        fresh: `as-${n}-all`,
      });
      problems.push(...out.problems);
      reached += out.reached;
      if (out.recovery !== undefined) recoveries.push(out.recovery);
      ctx.say(
        `agent-stop: ${x} (stalling) and ${u} (idle) stopped past the heartbeat window, ${out.problems.length ? out.problems.join('; ') : `converged ${out.recovery?.toFixed(1) ?? '-'} s after SIGCONT`} (${n}/${ctx.faults})`,
      );
    }
    await sampler.stop();
    const verdict = await judge(cluster, nodes, sampler, limits);
    return {
      scenario: 'agent-stop',
      seed: ctx.seed,
      runs: ctx.faults,
      faults: 2 * ctx.faults,
      endStates: { reached, expected: 2 * ctx.faults },
      doubleLoads: verdict.doubleLoads,
      leftInTransition: verdict.leftInTransition,
      recovery: {
        what: 'SIGCONT until the stalling LivePatch rolled back and the new one completed',
        seconds: recoveries,
      },
      violations: [
        ...problems.map((p) => `agent-stop (seed ${ctx.seed}): ${p}`),
        ...violationMessages('agent-stop', ctx.seed, verdict.violations),
      ],
      durationSeconds: seconds(Date.now() - t0),
      notes: { nodes: NODES, stoppedPerRun: 2 },
    };
  } finally {
    await cluster.stop();
  }
}
