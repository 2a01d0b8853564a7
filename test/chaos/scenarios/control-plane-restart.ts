// The API server restarted (etcd kept), or etcd restarted under it, in the
// middle of a rollout: the controllers' and agents' watches must recover and
// the rollout resume. Two controller replicas run, replaced if one exits (an
// outage past the renew deadline loses the Lease, and a replica that loses it
// exits, as a Deployment's pod would). Recovery: from the component being
// ready again until the rollout makes progress (a node more patched, or done).
import { annotateNode, createLivePatch, readLivePatch, sleep, until } from '../api.js';
import { startChaosCluster } from '../cluster.js';
import { violationMessages, type ScenarioResult } from '../report.js';
import { Replicas } from '../replicas.js';
import { Sampler } from '../sampler.js';
import { countsText, judge, seconds, type ScenarioContext } from '../scenario.js';

const NODES = 12;
const MAX_UNAVAILABLE = 2;
const DONE_TIMEOUT_MS = 180_000;

export type Restarted = 'apiserver' | 'etcd';

export function controlPlaneRestart(
  component: Restarted,
): (ctx: ScenarioContext) => Promise<ScenarioResult> {
  const scenario = `${component}-restart`;
  return async (ctx) => {
    const t0 = Date.now();
    const cluster = await startChaosCluster();
    const stop = component === 'apiserver' ? cluster.plane.stopApiserver : cluster.plane.stopEtcd;
    const start =
      component === 'apiserver' ? cluster.plane.startApiserver : cluster.plane.startEtcd;
    const rng = ctx.rng;
    try {
      const { nodes } = await cluster.startFleet('cp', NODES);
      for (const node of nodes)
        await annotateNode(cluster.kc, node, { 'sim.livepatch.io/transition-seconds': '2' });
      const sampler = new Sampler(cluster.kc);
      sampler.start();
      const replicas = new Replicas(cluster, 'cp-controller');
      await replicas.scaleTo(2);
      const runs = component === 'apiserver' ? ctx.size.apiserverRestarts : ctx.size.etcdRestarts;
      const recoveries: number[] = [];
      const problems: string[] = [];
      const limits = new Map<string, number>();
      let reached = 0;
      let replaced = 0;
      for (let n = 1; n <= runs; n++) {
        const name = `cp-${component}-${n}`;
        await replicas.leader();
        limits.set(name, MAX_UNAVAILABLE);
        await createLivePatch(cluster.kc, name, { rollout: { maxUnavailable: MAX_UNAVAILABLE } });
        await sleep(rng.int(1000, 8000));
        const down = rng.int(1000, 8000);
        await stop();
        await sleep(down);
        await start();
        const backAt = Date.now();
        const first = await until(
          () => readLivePatch(cluster.kc, name),
          (lp) => lp !== undefined,
          30_000,
        );
        const before = first.last?.status?.nodes?.patched ?? 0;
        const progress = await until(
          () => readLivePatch(cluster.kc, name),
          (lp) => (lp?.status?.nodes?.patched ?? 0) > before || lp?.status?.phase === 'Complete',
          DONE_TIMEOUT_MS,
        );
        // Already complete when it came back: nothing was left to resume.
        if (progress.ok && first.last?.status?.phase !== 'Complete')
          recoveries.push((Date.now() - backAt) / 1000);
        const done = await until(
          () => readLivePatch(cluster.kc, name),
          (lp) =>
            lp?.status?.phase === 'Complete' &&
            lp.status.observedGeneration === lp.metadata.generation,
          DONE_TIMEOUT_MS,
        );
        if (done.ok) reached++;
        else
          problems.push(
            `${name} did not complete after ${component} was down ${down} ms: ${done.last?.status?.phase ?? 'no phase'} (${countsText(done.last?.status?.nodes)})`,
          );
        replaced += await replicas.heal();
        ctx.say(
          `${scenario}: ${name}, down ${seconds(down)} s, resumed ${recoveries.at(-1)?.toFixed(1) ?? '-'} s after, ${done.ok ? 'Complete' : 'NOT complete'} (${n}/${runs})`,
        );
      }
      await sampler.stop();
      const verdict = await judge(cluster, nodes, sampler.snapshots, limits);
      return {
        scenario,
        seed: ctx.seed,
        runs,
        faults: runs,
        endStates: { reached, expected: runs },
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
