// An agent cut off from the API server: SIGSTOP past the controller's
// heartbeat window (90 s), then SIGCONT. One stopped node (X) is in a
// transition that stalls; another (U) is idle. While they are silent the
// controller counts both unknown and starts neither for a new LivePatch; when
// they come back, X's own guard reverses the overdue stall (the controller
// never saw it), and everything converges: the stalling LivePatch rolls back,
// the new one completes on every node.
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import { rawJson } from '../../../src/kube/raw.js';
import { PATHS } from '../../../src/kube/resources.js';
import type { Running } from '../../support/processes.js';
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
/** src/controller/targets.ts AGENT_STALE_MS, plus the agent's 30 s heartbeat and some slack. */
const SILENT_WAIT_MS = 150_000;
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

interface Outcome {
  readonly problems: string[];
  readonly recovery?: number;
  readonly reached: number;
}

async function oneStop(
  cluster: ChaosCluster,
  agents: Map<string, Running>,
  x: string,
  u: string,
  n: number,
): Promise<Outcome> {
  const problems: string[] = [];
  const stalling = `as-${n}-stall`;
  const fresh = `as-${n}-all`;
  await labelNode(cluster.kc, x, { [POOL]: stalling });
  await annotateNode(cluster.kc, x, { 'sim.livepatch.io/stuck-tasks': '1' });
  await createLivePatch(cluster.kc, stalling, {
    nodeSelector: { matchLabels: { [POOL]: stalling } },
    stall: { timeout: '20s', action: 'Rollback' },
    failureBudget: 0,
  });
  const transitioning = await until(
    () => readKernel(x, cluster.kernelFile(x), KERNEL),
    (k) => k.transition?.patch === patchNameOf(stalling) && k.transition.target === 1,
    30_000,
  );
  if (!transitioning.ok)
    return { problems: [`node ${x}: ${stalling} never started its transition`], reached: 0 };
  for (const node of [x, u]) agents.get(node)?.child.kill('SIGSTOP');
  const unknown = await until(
    () => readLivePatch(cluster.kc, stalling),
    (lp) => (lp?.status?.nodes?.unknown ?? 0) === 1,
    SILENT_WAIT_MS,
    1000,
  );
  if (!unknown.ok)
    problems.push(
      `node ${x}: silent, but ${stalling} never counted it unknown (${countsText(unknown.last?.status?.nodes)})`,
    );
  await createLivePatch(cluster.kc, fresh, { rollout: { maxUnavailable: 1 } });
  const others = await until(
    () => readLivePatch(cluster.kc, fresh),
    (lp) => (lp?.status?.nodes?.patched ?? 0) === NODES - 2,
    60_000,
  );
  if ((others.last?.status?.nodes?.unknown ?? 0) !== 2)
    problems.push(
      `nodes ${x} and ${u}: silent, but ${fresh} counts ${others.last?.status?.nodes?.unknown ?? 0} unknown (${countsText(others.last?.status?.nodes)})`,
    );
  for (const node of [x, u])
    if (await specHas(cluster, node, fresh))
      problems.push(`node ${node}: started for ${fresh} while its agent was silent`);
  // New transitions on X go through; the one in its kernel keeps its stuck task.
  await annotateNode(cluster.kc, x, { 'sim.livepatch.io/stuck-tasks': null });
  const contAt = Date.now();
  for (const node of [x, u]) agents.get(node)?.child.kill('SIGCONT');
  const [back, done] = await Promise.all([
    until(() => readLivePatch(cluster.kc, stalling), phaseIs('RolledBack'), CONVERGE_TIMEOUT_MS),
    until(() => readLivePatch(cluster.kc, fresh), phaseIs('Complete'), CONVERGE_TIMEOUT_MS),
  ]);
  const recovery = (Date.now() - contAt) / 1000;
  const xAgent = agents.get(x);
  if (xAgent && !guardReversed(xAgent))
    problems.push(`node ${x}: its agent did not reverse the overdue stall itself after SIGCONT`);
  if (!back.ok)
    problems.push(
      `${stalling} did not roll back: ${back.last?.status?.phase ?? 'no phase'} (${countsText(back.last?.status?.nodes)})`,
    );
  if (!done.ok)
    problems.push(
      `${fresh} did not complete: ${done.last?.status?.phase ?? 'no phase'} (${countsText(done.last?.status?.nodes)})`,
    );
  await labelNode(cluster.kc, x, { [POOL]: null });
  return {
    problems,
    reached: Number(back.ok) + Number(done.ok),
    ...(back.ok && done.ok ? { recovery } : {}),
  };
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
    for (let n = 1; n <= ctx.size.agentStops; n++) {
      const x = ctx.rng.pick(nodes);
      const u = ctx.rng.pick(nodes.filter((node) => node !== x));
      const out = await oneStop(cluster, agents, x, u, n);
      problems.push(...out.problems);
      reached += out.reached;
      if (out.recovery !== undefined) recoveries.push(out.recovery);
      ctx.say(
        `agent-stop: ${x} (stalling) and ${u} (idle) stopped past the heartbeat window, ${out.problems.length ? out.problems.join('; ') : `converged ${out.recovery?.toFixed(1) ?? '-'} s after SIGCONT`} (${n}/${ctx.size.agentStops})`,
      );
    }
    await sampler.stop();
    const verdict = await judge(cluster, nodes, sampler.snapshots, new Map());
    return {
      scenario: 'agent-stop',
      seed: ctx.seed,
      runs: ctx.size.agentStops,
      faults: 2 * ctx.size.agentStops,
      endStates: { reached, expected: 2 * ctx.size.agentStops },
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
