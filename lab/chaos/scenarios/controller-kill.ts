// Controller SIGKILL across rollouts, rollbacks, disables and deletions, with
// 2 or 3 replicas: each operation starts, the leader is killed at a random
// moment of it, a replacement starts, and the operation must still reach its
// end state. The take-over time is held against the README's figure.
import {
  annotateNode,
  createLivePatch,
  deleteLivePatch,
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

const NODES = 12;
const MAX_UNAVAILABLE = 3;
/** README, "How a rollout proceeds": a standby takes over within 17 s (lease 15 s + retry 2 s). */
const README_TAKEOVER_S = 17;
const OP_TIMEOUT_MS = 120_000;

type OpKind = 'rollout' | 'rollback' | 'disable' | 'delete';

interface Op {
  readonly kind: OpKind;
  readonly livePatch: string;
  /** How long the operation takes without faults, roughly: the kill lands somewhere in it. */
  readonly windowMs: number;
  begin(): Promise<void>;
  /** Whether it reached its end state, and what was last seen. */
  done(): Promise<{ ok: boolean; seen: string }>;
}

function phaseReached(cluster: ChaosCluster, name: string, phase: string): Op['done'] {
  return async () => {
    const r = await until(
      () => readLivePatch(cluster.kc, name),
      (lp) =>
        lp?.status?.phase === phase && lp.status.observedGeneration === lp.metadata.generation,
      OP_TIMEOUT_MS,
    );
    return {
      ok: r.ok,
      seen: `${r.last?.status?.phase ?? 'no phase'} (${countsText(r.last?.status?.nodes)})`,
    };
  };
}

function ops(cluster: ChaosCluster, stuck: () => string): Record<OpKind, (name: string) => Op> {
  const kc = cluster.kc;
  const rollout = { maxUnavailable: MAX_UNAVAILABLE };
  return {
    rollout: (name) => ({
      kind: 'rollout',
      livePatch: name,
      windowMs: 8000,
      begin: () => createLivePatch(kc, name, { rollout }),
      done: phaseReached(cluster, name, 'Complete'),
    }),
    rollback: (name) => ({
      kind: 'rollback',
      livePatch: name,
      windowMs: 8000,
      begin: async () => {
        await annotateNode(kc, stuck(), { 'sim.livepatch.io/stuck-tasks': '1' });
        await createLivePatch(kc, name, {
          rollout,
          stall: { timeout: '3s', action: 'Rollback' },
          failureBudget: 0,
        });
      },
      done: async () => {
        const r = await phaseReached(cluster, name, 'RolledBack')();
        await annotateNode(kc, stuck(), { 'sim.livepatch.io/stuck-tasks': null });
        return r;
      },
    }),
    disable: (name) => ({
      kind: 'disable',
      livePatch: name,
      windowMs: 6000,
      begin: async () => {
        await editLivePatch(kc, name, { state: 'Disabled' });
      },
      done: phaseReached(cluster, name, 'Disabled'),
    }),
    delete: (name) => ({
      kind: 'delete',
      livePatch: name,
      windowMs: 6000,
      begin: () => deleteLivePatch(kc, name),
      done: async () => {
        const r = await until(
          () => readLivePatch(kc, name),
          (lp) => lp === undefined,
          OP_TIMEOUT_MS,
        );
        return { ok: r.ok, seen: r.ok ? 'gone' : `still there: ${r.last?.status?.phase ?? ''}` };
      },
    }),
  };
}

/** The operations of one round: a rollout then its disable or deletion, or a rollback then its deletion. */
function round(n: number, make: ReturnType<typeof ops>, rng: ScenarioContext['rng']): Op[] {
  const name = `ck-${n}`;
  if (n % 3 === 0) return [make.rollback(name), make.delete(name)];
  return rng.next() < 0.5
    ? [make.rollout(name), make.disable(name)]
    : [make.rollout(name), make.delete(name)];
}

interface Tally {
  readonly takeovers: number[];
  readonly problems: string[];
  readonly limits: Map<string, number>;
  kills: number;
  ends: number;
  expected: number;
}

/** One operation with 2 or 3 replicas: begun, its leader killed at a random moment (while kills remain), then its end state. */
async function runOp(
  op: Op,
  replicas: Replicas,
  ctx: ScenarioContext,
  tally: Tally,
): Promise<void> {
  await replicas.scaleTo(ctx.rng.pick([2, 3]));
  await replicas.leader();
  tally.limits.set(op.livePatch, MAX_UNAVAILABLE);
  await op.begin();
  tally.expected++;
  if (tally.kills < ctx.faults) {
    await sleep(ctx.rng.int(0, op.windowMs));
    const kill = await replicas.killLeader();
    tally.kills++;
    if (kill?.takeoverMs === undefined)
      tally.problems.push(
        `${op.kind} ${op.livePatch}: no replica took over after killing ${kill?.killed ?? 'the leader'}`,
      );
    else tally.takeovers.push(kill.takeoverMs / 1000);
    ctx.say(
      `controller-kill: ${op.kind} ${op.livePatch}, killed ${kill?.killed ?? '?'} with ${replicas.count} replicas, take-over ${kill?.takeoverMs === undefined ? 'none' : `${seconds(kill.takeoverMs)} s`} (${tally.kills}/${ctx.faults})`,
    );
  }
  const end = await op.done();
  if (end.ok) tally.ends++;
  else
    tally.problems.push(
      `${op.kind} of ${op.livePatch} did not reach its end state within ${OP_TIMEOUT_MS / 1000}s: ${end.seen}`,
    );
}

export async function controllerKill(ctx: ScenarioContext): Promise<ScenarioResult> {
  const t0 = Date.now();
  const cluster = await startChaosCluster();
  const rng = ctx.rng;
  try {
    const { nodes } = await cluster.startFleet('ck', NODES);
    for (const node of nodes)
      await annotateNode(cluster.kc, node, { 'sim.livepatch.io/transition-seconds': '1' });
    const sampler = new Sampler(cluster.kc);
    sampler.start();
    const replicas = new Replicas(cluster, 'ck-controller');
    let stuckNode = rng.pick(nodes);
    const make = ops(cluster, () => stuckNode);
    const tally: Tally = {
      takeovers: [],
      problems: [],
      limits: new Map(),
      kills: 0,
      ends: 0,
      expected: 0,
    };
    const { takeovers, problems, limits } = tally;
    for (let n = 1; tally.kills < ctx.faults; n++) {
      stuckNode = rng.pick(nodes);
      for (const op of round(n, make, rng)) await runOp(op, replicas, ctx, tally);
      // A Disabled LivePatch is deleted without a fault, so the next round starts clean.
      const left = `ck-${n}`;
      await deleteLivePatch(cluster.kc, left);
      await until(
        () => readLivePatch(cluster.kc, left),
        (lp) => lp === undefined,
        OP_TIMEOUT_MS,
      );
    }
    problems.push(...replicas.exited());
    await sampler.stop();
    const verdict = await judge(cluster, nodes, sampler, limits);
    const slow = takeovers.filter((s) => s > README_TAKEOVER_S);
    return {
      scenario: 'controller-kill',
      seed: ctx.seed,
      runs: tally.expected,
      faults: tally.kills,
      endStates: { reached: tally.ends, expected: tally.expected },
      doubleLoads: verdict.doubleLoads,
      leftInTransition: verdict.leftInTransition,
      recovery: {
        what: 'SIGKILL of the leader until another replica logged "became the leader"',
        seconds: takeovers,
      },
      violations: [
        ...problems.map((p) => `controller-kill (seed ${ctx.seed}): ${p}`),
        ...violationMessages('controller-kill', ctx.seed, verdict.violations),
      ],
      durationSeconds: seconds(Date.now() - t0),
      notes: {
        readmeTakeoverSeconds: README_TAKEOVER_S,
        takeoversOverReadme: slow.length,
        nodes: NODES,
        maxUnavailable: MAX_UNAVAILABLE,
      },
    };
  } finally {
    await cluster.stop();
  }
}
