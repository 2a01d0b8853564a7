// The API server restarted (etcd kept), or etcd restarted under it, in the
// middle of a rollout: the controllers' and agents' watches must recover and
// the rollout resume. Two controller replicas run, replaced if one exits (an
// outage past the renew deadline loses the Lease, and a replica that loses it
// exits, as a Deployment's pod would). Recovery: from the component being
// ready again until the rollout makes progress (a node more patched, or done).
import type { LivePatch } from '../../../src/api/generated/types.js';
import { annotateNode, createLivePatch, readLivePatch, sleep, until } from '../api.js';
import { startChaosCluster, type ChaosCluster } from '../cluster.js';
import { violationMessages, type ScenarioResult } from '../report.js';
import { Replicas } from '../replicas.js';
import { Sampler } from '../sampler.js';
import { countsText, judge, seconds, type ScenarioContext } from '../scenario.js';

const NODES = 12;
const MAX_UNAVAILABLE = 2;
const DONE_TIMEOUT_MS = 180_000;

export type Restarted = 'apiserver' | 'etcd';

interface Outcome {
  readonly down: number;
  readonly recovery?: number;
  readonly problem?: string;
}

/** From now (the component ready again) until the rollout's next node is patched; none if it was already complete. */
async function resumed(read: () => Promise<LivePatch | undefined>): Promise<{ recovery?: number }> {
  const backAt = Date.now();
  const first = await until(read, (lp) => lp !== undefined, 30_000);
  if (first.last?.status?.phase === 'Complete') return {};
  const before = first.last?.status?.nodes?.patched ?? 0;
  const progress = await until(
    read,
    (lp) => (lp?.status?.nodes?.patched ?? 0) > before || lp?.status?.phase === 'Complete',
    DONE_TIMEOUT_MS,
  );
  return progress.ok ? { recovery: (Date.now() - backAt) / 1000 } : {};
}

/** One rollout, the component stopped and started at a random moment of it; how long it took to resume. */
async function oneRestart(
  cluster: ChaosCluster,
  component: Restarted,
  name: string,
  rng: ScenarioContext['rng'],
): Promise<Outcome> {
  const kc = cluster.kc;
  const read = (): ReturnType<typeof readLivePatch> => readLivePatch(kc, name);
  await createLivePatch(kc, name, { rollout: { maxUnavailable: MAX_UNAVAILABLE } });
  await sleep(rng.int(1000, 8000));
  const down = rng.int(1000, 8000);
  await (component === 'apiserver' ? cluster.plane.stopApiserver() : cluster.plane.stopEtcd());
  await sleep(down);
  await (component === 'apiserver' ? cluster.plane.startApiserver() : cluster.plane.startEtcd());
  const recovery = await resumed(read);
  const done = await until(
    read,
    (lp) =>
      lp?.status?.phase === 'Complete' && lp.status.observedGeneration === lp.metadata.generation,
    DONE_TIMEOUT_MS,
  );
  if (done.ok) return { down, ...recovery };
  const status = done.last?.status;
  return {
    down,
    ...recovery,
    problem: `${name} did not complete after ${component} was down ${down} ms: ${status?.phase ?? 'no phase'} (${countsText(status?.nodes)})`,
  };
}

export function controlPlaneRestart(
  component: Restarted,
): (ctx: ScenarioContext) => Promise<ScenarioResult> {
  const scenario = `${component}-restart`;
  return async (ctx) => {
    const t0 = Date.now();
    const cluster = await startChaosCluster();
    try {
      const { nodes } = await cluster.startFleet('cp', NODES);
      for (const node of nodes)
        await annotateNode(cluster.kc, node, { 'sim.livepatch.io/transition-seconds': '2' });
      const sampler = new Sampler(cluster.kc);
      sampler.start();
      const replicas = new Replicas(cluster, 'cp-controller');
      await replicas.scaleTo(2);
      const unsupervise = replicas.supervise();
      const runs = ctx.faults;
      const recoveries: number[] = [];
      const problems: string[] = [];
      const limits = new Map<string, number>();
      for (let n = 1; n <= runs; n++) {
        const name = `cp-${component}-${n}`;
        await replicas.leader();
        limits.set(name, MAX_UNAVAILABLE);
        const out = await oneRestart(cluster, component, name, ctx.rng);
        if (out.recovery !== undefined) recoveries.push(out.recovery);
        if (out.problem) problems.push(out.problem);
        ctx.say(
          `${scenario}: ${name}, down ${seconds(out.down)} s, resumed ${out.recovery?.toFixed(1) ?? '-'} s after, ${out.problem ?? 'Complete'} (${n}/${runs})`,
        );
      }
      const replaced = await unsupervise();
      await sampler.stop();
      const verdict = await judge(cluster, nodes, sampler, limits);
      return {
        scenario,
        seed: ctx.seed,
        runs,
        faults: runs,
        endStates: { reached: runs - problems.length, expected: runs },
        doubleLoads: verdict.doubleLoads,
        leftInTransition: verdict.leftInTransition,
        recovery: {
          what: `${component} ready again until the rollout's next node patched (or done)`,
          seconds: recoveries,
        },
        violations: [
          ...problems.map((p) => `${scenario} (seed ${ctx.seed}): ${p}`),
          ...violationMessages(scenario, ctx.seed, verdict.violations),
        ],
        durationSeconds: seconds(Date.now() - t0),
        notes: { nodes: NODES, maxUnavailable: MAX_UNAVAILABLE, controllersReplaced: replaced },
      };
    } finally {
      await cluster.stop();
    }
  };
}
