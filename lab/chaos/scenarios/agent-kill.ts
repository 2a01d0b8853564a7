// Agent SIGKILL mid-load, mid-transition, mid-reversal and mid-unload. Each
// node runs a standalone agent process whose simulated kernel is kept in its
// folder; the suite writes the node's LivePatchNode spec itself (no
// controller: the agent is under test), kills the agent at the chosen moment,
// lets the kernel run on for a while with no agent, restarts it, and waits
// for its status to say what the kernel has.
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';
import type { Running } from '../../operator-process.js';
import { annotateNode, KERNEL, setNodePatches, simModule, sleep, until } from '../api.js';
import { startChaosCluster, type ChaosCluster } from '../cluster.js';
import type { KernelReading } from '../evidence.js';
import { landedAt, type KillPoint } from '../in-flight.js';
import { statusAgainstKernel } from '../invariants.js';
import { readKernel } from '../kernels.js';
import type { Random } from '../random.js';
import { violationMessages, type FaultPoint, type ScenarioResult } from '../report.js';
import { Sampler, takeSnapshot } from '../sampler.js';
import { judge, seconds, type ScenarioContext } from '../scenario.js';

const NODES = 5;
const CONVERGE_TIMEOUT_MS = 60_000;

/** What the node's status must say about the patch once the agent is back. */
const SETTLED: Record<KillPoint, string> = {
  load: 'Patched',
  transition: 'Patched',
  reversal: 'Stalled',
  unload: 'Unpatched',
};

interface NodeRun {
  readonly node: string;
  readonly cluster: ChaosCluster;
  readonly rng: Random;
  agent: Running;
  readonly desired: DesiredPatch[];
  readonly recoveries: number[];
  readonly problems: string[];
  readonly kinds: Record<KillPoint, number>;
  readonly points: FaultPoint[];
}

const knobs = (run: NodeRun, a: Record<string, string | null>): Promise<unknown> =>
  annotateNode(run.cluster.kc, run.node, a);

async function entry(name: string, stallTimeout: string): Promise<DesiredPatch> {
  const patchName = `livepatch_${name.replaceAll('-', '_')}`;
  const module = await simModule(patchName);
  return {
    livePatch: name as LivePatchName,
    patchName: patchName as PatchName,
    state: 'Enabled',
    module: { hostPath: module.hostPath, sha256: module.sha256 },
    generation: 1,
    stallTimeout,
    allowForce: false,
  };
}

const kernelOf = (run: NodeRun): Promise<KernelReading> =>
  readKernel(run.node, run.cluster.kernelFile(run.node), KERNEL);

/** Waits until the kernel shows the patch in transition toward `target` (the moment to kill). */
const inTransition = (run: NodeRun, patch: string, target: 0 | 1): Promise<unknown> =>
  until(
    () => kernelOf(run),
    (k) => k.transition?.patch === patch && k.transition.target === target,
    15_000,
    50,
  );

/** Writes the spec for one kill point and waits for the moment to kill; the patch it is about. */
async function prepare(
  run: NodeRun,
  point: KillPoint,
  n: number,
): Promise<DesiredPatch | undefined> {
  const write = (): Promise<unknown> => setNodePatches(run.cluster.kc, run.node, run.desired);
  if (point === 'unload') {
    const i = run.desired.findIndex((d) => d.state === 'Enabled');
    const victim = run.desired[i];
    if (!victim) return undefined;
    await knobs(run, { 'sim.livepatch.io/transition-seconds': '3' });
    run.desired[i] = { ...victim, state: 'Disabled' };
    await write();
    if (run.rng.next() < 0.5) await inTransition(run, victim.patchName, 0);
    await sleep(run.rng.int(0, 1500));
    return run.desired[i];
  }
  const e = await entry(`ak-${run.node}-${n}`, point === 'reversal' ? '2s' : '60s');
  await knobs(run, {
    'sim.livepatch.io/transition-seconds': point === 'transition' ? '4' : '1',
    'sim.livepatch.io/stuck-tasks': point === 'reversal' ? '1' : null,
  });
  run.desired.push(e);
  await write();
  if (point === 'load') await sleep(run.rng.int(0, 400));
  if (point === 'transition') await inTransition(run, e.patchName, 1);
  if (point === 'reversal') await inTransition(run, e.patchName, 0);
  if (point !== 'load') await sleep(run.rng.int(0, point === 'transition' ? 1500 : 300));
  return e;
}

/** Whether the kernel has the patch as the settled phase means: enabled (Patched), or unloaded. */
const kernelSettled = (k: KernelReading, patch: DesiredPatch, phase: string): boolean =>
  !k.transition &&
  (phase === 'Patched'
    ? k.patches.some((p) => p.name === patch.patchName && p.enabled)
    : !k.modules.includes(patch.patchName));

/**
 * The restarted agent runs, the kernel has settled as the phase means (a
 * stall reversed is unloaded too), and the status says that phase and agrees
 * with the kernel.
 */
async function converged(run: NodeRun, patch: DesiredPatch, phase: string): Promise<boolean> {
  if (!/agent running/.test(run.agent.output())) return false;
  const [kernel, snapshot] = await Promise.all([kernelOf(run), takeSnapshot(run.cluster.kc)]);
  const sample = snapshot.nodes.find((n) => n.node === run.node);
  const mine = sample?.patches.find((p) => p.patchName === patch.patchName);
  return (
    mine?.phase === phase &&
    kernelSettled(kernel, patch, phase) &&
    statusAgainstKernel(kernel, sample).length === 0
  );
}

async function oneKill(run: NodeRun, n: number): Promise<void> {
  const canUnload = run.desired.some((d) => d.state === 'Enabled');
  const point =
    canUnload && run.rng.next() < 0.4
      ? 'unload'
      : run.rng.pick<KillPoint>(['load', 'transition', 'reversal']);
  const patch = await prepare(run, point, n);
  if (!patch) return;
  const killedAt = Date.now();
  await run.agent.stop('SIGKILL');
  run.kinds[point]++;
  // Where it landed, by the kernel's own timeline (brought up to now) at the moment of the kill.
  const landed = landedAt((await kernelOf(run)).timeline, patch.patchName, killedAt);
  run.points.push({
    node: run.node,
    patch: patch.patchName,
    at: new Date(killedAt).toISOString(),
    intended: point,
    landed,
  });
  // No agent for a while: the kernel's transition goes on (or its stall outlasts the timeout).
  await sleep(run.rng.int(0, 2500));
  const restartedAt = Date.now();
  run.agent = run.cluster.startAgent(run.node);
  const done = await until(
    () => converged(run, patch, SETTLED[point]),
    (ok) => ok,
    CONVERGE_TIMEOUT_MS,
    200,
  );
  if (done.ok) run.recoveries.push((Date.now() - restartedAt) / 1000);
  else {
    const kernel = await kernelOf(run);
    const snapshot = await takeSnapshot(run.cluster.kc).catch(() => undefined);
    const seen = snapshot?.nodes
      .find((x) => x.node === run.node)
      ?.patches.find((p) => p.patchName === patch.patchName);
    run.problems.push(
      `node ${run.node}: killed mid-${point} of ${patch.patchName}, its status did not settle on ${SETTLED[point]} within ${CONVERGE_TIMEOUT_MS / 1000}s: status ${seen?.phase ?? 'none'}, kernel ${JSON.stringify({ transition: kernel.transition, patches: kernel.patches, modules: kernel.modules })}`,
    );
  }
  if (point === 'reversal') {
    // Stalled for good in this generation: disabled, so the node is clean for the next kill.
    await knobs(run, { 'sim.livepatch.io/stuck-tasks': null });
    const i = run.desired.findIndex((d) => d.patchName === patch.patchName);
    run.desired[i] = { ...patch, state: 'Disabled' };
    await setNodePatches(run.cluster.kc, run.node, run.desired);
  }
}

export async function agentKill(ctx: ScenarioContext): Promise<ScenarioResult> {
  const t0 = Date.now();
  const cluster = await startChaosCluster();
  try {
    const nodes = Array.from({ length: NODES }, (_, i) => `ak-${i}`);
    await cluster.registerNodes(nodes);
    const runs: NodeRun[] = nodes.map((node, i) => ({
      node,
      cluster,
      rng: ctx.rng.fork(i),
      agent: cluster.startAgent(node),
      desired: [],
      recoveries: [],
      problems: [],
      kinds: { load: 0, transition: 0, reversal: 0, unload: 0 },
      points: [],
    }));
    for (const run of runs) await run.agent.waitFor(/agent running/, 60_000);
    const sampler = new Sampler(cluster.kc);
    sampler.start();
    await Promise.all(
      runs.map(async (run, i) => {
        const share = Math.floor(ctx.faults / NODES) + (i < ctx.faults % NODES ? 1 : 0);
        for (let n = 0; n < share; n++) {
          await oneKill(run, n);
          ctx.say(
            `agent-kill: ${run.node} ${n + 1}/${share}, recovered in ${run.recoveries.at(-1)?.toFixed(1) ?? '-'} s`,
          );
        }
      }),
    );
    await sampler.stop();
    const verdict = await judge(cluster, nodes, sampler, new Map());
    const sum = (k: KillPoint): number => runs.reduce((s, r) => s + r.kinds[k], 0);
    const kills = sum('load') + sum('transition') + sum('reversal') + sum('unload');
    const recoveries = runs.flatMap((r) => r.recoveries);
    const problems = runs.flatMap((r) => r.problems);
    return {
      scenario: 'agent-kill',
      seed: ctx.seed,
      runs: kills,
      faults: kills,
      endStates: { reached: recoveries.length, expected: kills },
      doubleLoads: verdict.doubleLoads,
      leftInTransition: verdict.leftInTransition,
      recovery: {
        what: 'restart of the killed agent until its status agreed with its kernel, settled',
        seconds: recoveries,
      },
      violations: [
        ...problems.map((p) => `agent-kill (seed ${ctx.seed}), ${p}`),
        ...violationMessages('agent-kill', ctx.seed, verdict.violations),
      ],
      durationSeconds: seconds(Date.now() - t0),
      faultPoints: runs.flatMap((r) => r.points),
      notes: {
        midLoad: sum('load'),
        midTransition: sum('transition'),
        midReversal: sum('reversal'),
        midUnload: sum('unload'),
        nodes: NODES,
      },
    };
  } finally {
    await cluster.stop();
  }
}
