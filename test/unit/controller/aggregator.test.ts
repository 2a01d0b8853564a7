// The fleet status a user reads in `kubectl get/describe livepatch`, and the
// Events the controller records, from nodes' own reports: pure, injected time.
import { describe, expect, test } from '@jest/globals';
import type {
  Condition,
  LivePatch,
  LivePatchNode,
  LivePatchPhase,
  UnhealthyNode,
} from '../../../src/api/generated/types.js';
import type { NodeName } from '../../../src/api/names.js';
import {
  aggregateStatus,
  CONDITION,
  countNodes,
  stalledNodes,
} from '../../../src/controller/aggregator.js';
import { decisionEvents } from '../../../src/controller/decision-events.js';
import { KSTATUS_CONDITION } from '../../../src/controller/kstatus-conditions.js';
import type { Plan } from '../../../src/controller/plan.js';
import { classifyNodes, rolloutOrder, type NodeSlot } from '../../../src/controller/targets.js';
import {
  at,
  entry,
  Fleet,
  iso,
  K26,
  K27,
  K5,
  livePatch,
  LP,
  lpn,
  module,
  node,
  nodeName,
  observed,
  QEMU,
  reconcile,
  simulate,
  T0,
} from './fixtures.js';

const KERNELS = [
  { release: K26, module: module('k26') },
  { release: K27, module: module('k27') },
];

function plan(phase: LivePatchPhase, o: Partial<Plan> = {}): Plan {
  return {
    phase,
    // The planner's reason for Failed says which: Halted (stall.action) or UnpatchFailed.
    reason: phase === 'Failed' ? 'Halted' : phase,
    message: `the plan says ${phase}`,
    writes: new Map(),
    started: [],
    step: { index: 0, startTime: T0, pausedAtStart: false },
    unhealthy: [],
    maxUnavailable: 1,
    releaseFinalizer: false,
    ...o,
  };
}

type Row = [name: string, o: { kernel?: typeof K26; ready?: boolean; lpn?: LivePatchNode }];

function slotsOf(
  rows: Row[],
  lp: LivePatch = livePatch({ spec: { kernels: KERNELS } }),
): NodeSlot[] {
  const fleet = new Fleet(
    rows.map(([name, o]) => node(name, { kernel: o.kernel ?? K26, ready: o.ready ?? true })),
    T0,
  );
  for (const [name, o] of rows) if (o.lpn) fleet.lpns.set(name, o.lpn);
  return classifyNodes(lp, fleet.nodes, fleet.lpns, T0);
}

/** A node reporting `phase` for its Enabled (or given) entry of generation 1. */
function reporting(name: string, phase: Parameters<typeof observed>[0], o = {}): LivePatchNode {
  return lpn(name, {
    heartbeat: T0,
    desired: [entry(o)],
    observed: [observed(phase, phase === 'Stalled' ? stalledReport(T0 - 61_000) : {})],
  });
}

const stalledReport = (since: number): Parameters<typeof observed>[1] => ({
  transitionStartTime: iso(since),
  pendingTasks: 1,
  blockingTasks: [QEMU],
});

const byType = (conditions: readonly Condition[] | undefined, type: string): Condition => {
  const found = conditions?.find((c) => c.type === type);
  if (!found) throw new Error(`no ${type} condition`);
  return found;
};

const MIXED: Row[] = [
  ['patched-1', { lpn: reporting('patched-1', 'Patched') }],
  ['patched-2', { kernel: K27, lpn: reporting('patched-2', 'Patched') }],
  ['moving', { lpn: reporting('moving', 'Transitioning') }],
  ['waiting', {}],
  ['stuck', { lpn: reporting('stuck', 'Stalled') }],
  ['broken', { lpn: reporting('broken', 'Failed') }],
  ['reverted', { lpn: reporting('reverted', 'Unpatched', { state: 'Disabled' }) }],
  ['replaced', { lpn: reporting('replaced', 'Replaced') }],
  ['old-kernel', { kernel: K5 }],
  ['not-ready', { ready: false, kernel: K27 }],
];

describe('counts and summary', () => {
  test('every node is counted once, by where it stands', () => {
    expect(countNodes(slotsOf(MIXED))).toEqual({
      targeted: 9,
      patched: 2,
      transitioning: 1,
      pending: 1,
      stalled: 1,
      failed: 1,
      reverted: 1,
      replaced: 1,
      notApplicable: 1,
      unknown: 1,
    });
  });

  test('the PATCHED column reads patched/targeted, unknown nodes included in targeted', () => {
    const status = aggregateStatus(livePatch(), slotsOf(MIXED), plan('Progressing'), T0);
    expect(status.summary).toBe('2/9');
  });

  test('progress per kernel release, sorted, without the nodes no build is for', () => {
    const status = aggregateStatus(livePatch(), slotsOf(MIXED), plan('Progressing'), T0);
    expect(status.kernels).toEqual([
      { release: K26, targeted: 7, patched: 1 },
      { release: K27, targeted: 2, patched: 1 },
    ]);
  });

  test('status carries the generation it describes, the step and the nodes that failed their bake', () => {
    const lp = livePatch({ generation: 7 });
    const unhealthy: UnhealthyNode = {
      node: nodeName(1),
      reason: 'KernelTainted',
      message: 'the kernel gained taint W',
      generation: 7,
      taintBefore: '',
      taintAfter: 'WK',
    };
    const status = aggregateStatus(
      lp,
      slotsOf(MIXED),
      plan('Progressing', {
        step: { index: 2, startTime: at(5), pausedAtStart: true },
        unhealthy: [unhealthy],
      }),
      T0,
    );
    expect(status).toMatchObject({
      observedGeneration: 7,
      phase: 'Progressing',
      currentStep: 2,
      currentStepStartTime: iso(at(5)),
      pausedAtStepStart: true,
      unhealthyNodes: [unhealthy],
    });
    expect(status.conditions?.map((c) => c.observedGeneration)).toEqual([7, 7, 7, 7, 7, 7, 7]);
  });
});

describe('stalled nodes', () => {
  test('are listed with when they stalled and the tasks that blocked them, at most 20, by name', () => {
    const rows: Row[] = Array.from({ length: 25 }, (_, i) => {
      const name = nodeName(25 - i);
      return [name, { lpn: reporting(name, 'Stalled') }];
    });
    const slots = slotsOf(rows);
    const listed = stalledNodes(slots);
    expect(listed).toHaveLength(20);
    expect(listed.map((s) => s.node)).toEqual(
      Array.from({ length: 20 }, (_, i) => nodeName(i + 1)),
    );
    expect(listed[0]).toEqual({ node: 'node-01', since: iso(T0 - 61_000), blockingTasks: [QEMU] });
    expect(countNodes(slots).stalled).toBe(25);
  });

  test('a node that stalled on an older generation is no longer listed: it is tried again', () => {
    const slots = slotsOf(
      [['stuck', { lpn: reporting('stuck', 'Stalled') }]],
      livePatch({ generation: 2 }),
    );
    expect(stalledNodes(slots)).toEqual([]);
    expect(countNodes(slots)).toMatchObject({ stalled: 0, pending: 1 });
  });
});

describe('conditions', () => {
  const healthy: Row[] = [['a', { lpn: reporting('a', 'Patched') }]];
  const stalling: Row[] = [...healthy, ['stuck', { lpn: reporting('stuck', 'Stalled') }]];
  const failing: Row[] = [...healthy, ['broken', { lpn: reporting('broken', 'Failed') }]];
  test.each<[LivePatchPhase, Row[], [string, string, string, string], string]>([
    ['Complete', healthy, ['True', 'False', 'False', 'False'], 'Healthy'],
    ['Progressing', healthy, ['False', 'True', 'False', 'False'], 'Healthy'],
    ['Paused', healthy, ['False', 'False', 'False', 'False'], 'Healthy'],
    ['Progressing', failing, ['False', 'True', 'False', 'True'], 'NodesFailed'],
    ['RollingBack', stalling, ['False', 'True', 'True', 'True'], 'RollingBack'],
    ['RolledBack', stalling, ['False', 'False', 'True', 'True'], 'RolledBack'],
    ['Failed', stalling, ['False', 'False', 'True', 'True'], 'Halted'],
    ['Disabling', healthy, ['False', 'True', 'False', 'False'], 'Healthy'],
    ['Disabled', healthy, ['False', 'False', 'False', 'False'], 'Healthy'],
  ])(
    'phase %s: Complete, Progressing, NodesStalled, Degraded are %j',
    (phase, rows, expected, degraded) => {
      const status = aggregateStatus(livePatch(), slotsOf(rows), plan(phase), T0);
      const types = [
        CONDITION.complete,
        CONDITION.progressing,
        CONDITION.nodesStalled,
        CONDITION.degraded,
      ];
      expect(types.map((t) => byType(status.conditions, t).status)).toEqual(expected);
      expect(byType(status.conditions, CONDITION.degraded).reason).toBe(degraded);
    },
  );

  // kstatus reads Reconciling=True as InProgress and Stalled=True as Failed; Argo CD's check reads them too.
  test.each<[LivePatchPhase, Row[], [string, string, string]]>([
    ['Progressing', healthy, ['False', 'True', 'False']],
    ['Paused', healthy, ['False', 'True', 'False']],
    ['Complete', healthy, ['True', 'False', 'False']],
    ['Complete', stalling, ['True', 'False', 'False']],
    ['RollingBack', stalling, ['False', 'True', 'False']],
    ['RolledBack', stalling, ['False', 'False', 'True']],
    ['Failed', stalling, ['False', 'False', 'True']],
    ['Disabling', healthy, ['False', 'True', 'False']],
    ['Disabled', healthy, ['True', 'False', 'False']],
  ])('phase %s: Ready, Reconciling, Stalled are %j', (phase, rows, expected) => {
    const status = aggregateStatus(livePatch(), slotsOf(rows), plan(phase), T0);
    const types = [
      KSTATUS_CONDITION.ready,
      KSTATUS_CONDITION.reconciling,
      KSTATUS_CONDITION.stalled,
    ];
    expect(types.map((t) => byType(status.conditions, t).status)).toEqual(expected);
  });

  test('Stalled says what to do, in the words of Degraded; Ready of a Complete rollout counts the nodes', () => {
    const rows: Row[] = [...healthy, ['stuck', { lpn: reporting('stuck', 'Stalled') }]];
    const failed = aggregateStatus(livePatch(), slotsOf(rows), plan('Failed'), T0);
    const degraded = byType(failed.conditions, CONDITION.degraded);
    expect(byType(failed.conditions, KSTATUS_CONDITION.stalled)).toMatchObject({
      reason: 'Halted',
      message: degraded.message,
    });
    expect(byType(failed.conditions, KSTATUS_CONDITION.stalled).message).toContain(
      `kubectl livepatch retry ${LP}`,
    );
    const done = aggregateStatus(livePatch(), slotsOf(rows), plan('Complete'), T0);
    expect(byType(done.conditions, KSTATUS_CONDITION.ready)).toMatchObject({
      reason: 'RolloutComplete',
      message: byType(done.conditions, CONDITION.complete).message,
    });
  });

  test('the NodesStalled condition names the stalled node and what blocks it', () => {
    const rows: Row[] = [['stuck', { lpn: reporting('stuck', 'Stalled') }]];
    const status = aggregateStatus(livePatch(), slotsOf(rows), plan('Progressing'), T0);
    expect(byType(status.conditions, CONDITION.nodesStalled).message).toMatch(
      /stuck \(blocked by qemu-kvm\[812\]\)/,
    );
  });

  test('lastTransitionTime is kept while a condition holds, and moves when it changes', () => {
    const rows: Row[] = [['a', { lpn: reporting('a', 'Patched') }]];
    const first = aggregateStatus(livePatch(), slotsOf(rows), plan('Progressing'), at(0));
    const same = aggregateStatus(
      livePatch({ status: first }),
      slotsOf(rows),
      plan('Progressing'),
      at(60),
    );
    expect(same.conditions).toEqual(first.conditions);
    const done = aggregateStatus(
      livePatch({ status: same }),
      slotsOf(rows),
      plan('Complete'),
      at(120),
    );
    const when = (type: string): string => byType(done.conditions, type).lastTransitionTime;
    expect(when(CONDITION.complete)).toBe(iso(at(120)));
    expect(when(CONDITION.progressing)).toBe(iso(at(120)));
    expect(when(CONDITION.nodesStalled)).toBe(iso(at(0)));
    expect(when(CONDITION.degraded)).toBe(iso(at(0)));
  });

  test('a Complete rollout with a stalled node within the failure budget says so', () => {
    const rows: Row[] = [
      ['a', { lpn: reporting('a', 'Patched') }],
      ['stuck', { lpn: reporting('stuck', 'Stalled') }],
    ];
    const lp = livePatch({ spec: { failureBudget: 1 } });
    const status = aggregateStatus(lp, slotsOf(rows, lp), plan('Complete'), T0);
    expect(byType(status.conditions, CONDITION.complete)).toMatchObject({
      status: 'True',
      message: '1/2 nodes patched, 1 stalled (within the failure budget)',
    });
  });

  test('a Complete rollout that went past a stall with stall.action Ignore does not claim a budget it exceeded', () => {
    const rows: Row[] = [
      ['a', { lpn: reporting('a', 'Patched') }],
      ['stuck', { lpn: reporting('stuck', 'Stalled') }],
    ];
    const lp = livePatch({ spec: { stall: { action: 'Ignore' } } });
    const status = aggregateStatus(lp, slotsOf(rows, lp), plan('Complete'), T0);
    const message = byType(status.conditions, CONDITION.complete).message;
    expect(message).toMatch(/1 stalled/);
    expect(message).toMatch(/Ignore/);
    expect(message).not.toMatch(/within the failure budget/);
  });
});

/** Six nodes, two at a time; the third node in rollout order stalls on qemu-kvm. */
function stallingRollout(
  action: 'Rollback' | 'Halt',
): ReturnType<typeof simulate> & { stuck: NodeName } {
  const fleet = Fleet.of(6, T0);
  const stuck = rolloutOrder(
    LP,
    fleet.nodes.map((n) => n.name),
  )[2];
  if (!stuck) throw new Error('no node');
  fleet.stallOn.add(stuck);
  const sim = simulate(
    livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action } } }),
    fleet,
  );
  return { ...sim, stuck };
}

describe('a rollout that did not go through is visible as a condition with a human reason', () => {
  test('RolledBack: Degraded names the rollback, the stalled node and the task that blocked it', () => {
    const { lp, stuck } = stallingRollout('Rollback');
    expect(lp.status?.phase).toBe('RolledBack');
    const degraded = byType(lp.status?.conditions, CONDITION.degraded);
    expect(degraded).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(degraded.message).toContain('stall.action Rollback');
    expect(degraded.message).toContain(`${stuck} (blocked by qemu-kvm[812])`);
    expect(byType(lp.status?.conditions, CONDITION.complete).status).toBe('False');
  });

  test('Failed (Halt): Degraded says no new node starts and what blocks the stalled one', () => {
    const { lp, stuck } = stallingRollout('Halt');
    const degraded = byType(lp.status?.conditions, CONDITION.degraded);
    expect(degraded).toMatchObject({ status: 'True', reason: 'Halted' });
    expect(degraded.message).toContain('no new node starts');
    expect(degraded.message).toContain(`${stuck} (blocked by qemu-kvm[812])`);
  });
});

describe('a rollout stopped by failed nodes', () => {
  test('Degraded names the failed node and the agent’s words, and asks to fix it, not to look for tasks', () => {
    const broken = lpn('broken', {
      heartbeat: T0,
      desired: [entry()],
      observed: [
        observed('Failed', { message: 'checksum mismatch: the module file has sha256 abc' }),
      ],
    });
    const rows: Row[] = [['broken', { lpn: broken }]];
    const status = aggregateStatus(livePatch(), slotsOf(rows), plan('Failed'), T0);
    const degraded = byType(status.conditions, CONDITION.degraded);
    expect(degraded.message).toContain(
      'failed: broken: checksum mismatch: the module file has sha256 abc',
    );
    expect(degraded.message).toContain(
      `Fix the failed nodes, then kubectl livepatch retry ${LP} (or edit the LivePatch)`,
    );
    expect(degraded.message).not.toContain('stalled tasks');
  });
});

describe('events', () => {
  test('a rollout tells its story: one StepStarted with the first nodes, then Completed', () => {
    const fleet = Fleet.of(4, T0);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    const events = sim.passes.flatMap((p) => p.events);
    const order = rolloutOrder(
      LP,
      fleet.nodes.map((n) => n.name),
    );
    expect(events).toEqual([
      {
        type: 'Normal',
        reason: 'StepStarted',
        message: `step 1: patching nodes, at most 2 at a time; first: ${order.slice(0, 2).join(', ')}`,
      },
      { type: 'Normal', reason: 'Completed', message: 'rollout complete: 4/4 nodes patched' },
    ]);
  });

  test('a stall tells which node and which tasks, once, then that the rollback started and finished', () => {
    const { passes, stuck } = stallingRollout('Rollback');
    const events = passes.flatMap((p) => p.events).filter((e) => e.reason !== 'StepStarted');
    expect(events.map((e) => e.reason)).toEqual([
      'NodeStalled',
      'RollbackStarted',
      'RollbackFinished',
    ]);
    expect(events[0]).toEqual({
      type: 'Warning',
      reason: 'NodeStalled',
      message: `node ${stuck} stalled (blocked by qemu-kvm[812]); its agent reversed the transition`,
    });
    expect(events[1]).toMatchObject({
      type: 'Warning',
      message: expect.stringContaining('reversing every node'),
    });
    expect(events[2]?.message).toBe('every node is unpatched (3 reverted)');
  });

  test('nothing is said when nothing changed', () => {
    const fleet = Fleet.of(2, T0);
    const sim = simulate(livePatch(), fleet);
    const again = reconcile(sim.lp, fleet, sim.now + 60_000);
    expect(again.events).toEqual([]);
  });

  test('an unpatching batch is not announced as a step', () => {
    const status = aggregateStatus(
      livePatch(),
      [],
      plan('Disabling', { started: [nodeName(1)] }),
      T0,
    );
    expect(
      decisionEvents({ phase: 'Disabling' }, status, plan('Disabling', { started: [nodeName(1)] })),
    ).toEqual([]);
  });
});
