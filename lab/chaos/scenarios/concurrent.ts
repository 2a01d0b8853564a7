// Two LivePatches rolling out at once over the same nodes, and edits (new
// generations) racing both rollouts: never two transitions on one node (from
// the sampled statuses; the kernel itself refuses a second one with EBUSY,
// which would show as a Failed node), and nothing lost: both complete at
// their latest generation with every node Patched.
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import { rawJson } from '../../../src/kube/raw.js';
import { PATHS } from '../../../src/kube/resources.js';
import {
  annotateNode,
  createLivePatch,
  editLivePatch,
  readLivePatch,
  sleep,
  until,
} from '../api.js';
import { startChaosCluster, type ChaosCluster } from '../cluster.js';
import { violationMessages, type ScenarioResult } from '../report.js';
import { Replicas } from '../replicas.js';
import { Sampler } from '../sampler.js';
import { countsText, judge, seconds, type ScenarioContext } from '../scenario.js';

const NODES = 8;
const MAX_UNAVAILABLE = 2;
const DONE_TIMEOUT_MS = 180_000;

const completeAtLatest = (lp: LivePatch | undefined): boolean =>
  lp?.status?.phase === 'Complete' && lp.status.observedGeneration === lp.metadata.generation;

/** Nodes that do not report this LivePatch Patched. */
async function notPatched(cluster: ChaosCluster, livePatch: string): Promise<string[]> {
  const list = await rawJson<{ items: LivePatchNode[] }>(cluster.kc, 'GET', PATHS.livePatchNodes);
  return list.items
    .filter(
      (n) => !n.status?.patches?.some((p) => p.livePatch === livePatch && p.phase === 'Patched'),
    )
    .map((n) => n.metadata.name ?? '');
}

interface RunOutcome {
  readonly edits: number;
  readonly reached: number;
  readonly recovery: number;
  readonly problems: string[];
}

/** Two LivePatches created at once, 2 to 4 edits racing them, then both must complete with every node Patched. */
async function oneRun(
  cluster: ChaosCluster,
  pair: readonly string[],
  rng: ScenarioContext['rng'],
): Promise<RunOutcome> {
  const kc = cluster.kc;
  await Promise.all(
    pair.map((name) => createLivePatch(kc, name, { rollout: { maxUnavailable: MAX_UNAVAILABLE } })),
  );
  // New generations while both roll out: the stall timeout and bake time change, the patch stays.
  const racing = rng.int(2, 4);
  let lastEdit = Date.now();
  for (let e = 0; e < racing; e++) {
    await sleep(rng.int(200, 3000));
    await editLivePatch(kc, rng.pick(pair), {
      stall: { timeout: `${rng.int(30, 90)}s` },
      rollout: { maxUnavailable: MAX_UNAVAILABLE, bakeTime: `${rng.int(0, 1)}s` },
    });
    lastEdit = Date.now();
  }
  const done = await Promise.all(
    pair.map((name) => until(() => readLivePatch(kc, name), completeAtLatest, DONE_TIMEOUT_MS)),
  );
  const recovery = (Date.now() - lastEdit) / 1000;
  const problems = await incomplete(cluster, pair, done);
  return { edits: racing, reached: pair.length - problems.length, recovery, problems };
}

/** What is lost: a LivePatch not Complete at its latest generation, or a node not Patched with it. */
async function incomplete(
  cluster: ChaosCluster,
  pair: readonly string[],
  done: readonly { ok: boolean; last: LivePatch | undefined }[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const [i, name] of pair.entries()) {
    const missing = await notPatched(cluster, name);
    if (done[i]?.ok && missing.length === 0) continue;
    const last = done[i]?.last;
    const status = last?.status;
    problems.push(
      `${name}: ${status?.phase ?? 'no phase'} at generation ${status?.observedGeneration ?? '?'} of ${last?.metadata.generation ?? '?'} (${countsText(status?.nodes)}), not Patched on ${missing.join(', ') || 'none'}`,
    );
  }
  return problems;
}

export async function concurrent(ctx: ScenarioContext): Promise<ScenarioResult> {
  const t0 = Date.now();
  const cluster = await startChaosCluster();
  try {
    const { nodes } = await cluster.startFleet('cc', NODES);
    for (const node of nodes)
      await annotateNode(cluster.kc, node, { 'sim.livepatch.io/transition-seconds': '2' });
    const sampler = new Sampler(cluster.kc);
    sampler.start();
    const replicas = new Replicas(cluster, 'cc-controller');
    await replicas.scaleTo(2);
    await replicas.leader();
    const limits = new Map<string, number>();
    const problems: string[] = [];
    const recoveries: number[] = [];
    let edits = 0;
    let reached = 0;
    for (let n = 1; n <= ctx.faults; n++) {
      const pair = [`cc-${n}-a`, `cc-${n}-b`];
      for (const name of pair) limits.set(name, MAX_UNAVAILABLE);
      const out = await oneRun(cluster, pair, ctx.rng);
      edits += out.edits;
      reached += out.reached;
      recoveries.push(out.recovery);
      problems.push(...out.problems);
      ctx.say(
        `concurrent: ${pair.join(' and ')}, ${out.edits} edits racing, ${out.problems.length ? 'NOT complete' : 'both Complete'} (${n}/${ctx.faults})`,
      );
    }
    await sampler.stop();
    const verdict = await judge(cluster, nodes, sampler, limits);
    return {
      scenario: 'concurrent-edits',
      seed: ctx.seed,
      runs: ctx.faults,
      faults: edits,
      endStates: { reached, expected: 2 * ctx.faults },
      doubleLoads: verdict.doubleLoads,
      leftInTransition: verdict.leftInTransition,
      recovery: {
        what: 'the last racing edit until both LivePatches were Complete at their latest generation',
        seconds: recoveries,
      },
      violations: [
        ...problems.map((p) => `concurrent-edits (seed ${ctx.seed}): ${p}`),
        ...violationMessages('concurrent-edits', ctx.seed, verdict.violations),
      ],
      durationSeconds: seconds(Date.now() - t0),
      notes: { nodes: NODES, maxUnavailable: MAX_UNAVAILABLE, livePatchesPerRun: 2 },
    };
  } finally {
    await cluster.stop();
  }
}
