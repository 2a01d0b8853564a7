// The rollout policy, table by table and as whole simulated rollouts: pure
// functions, injected time, a fleet of plain objects whose agents answer like
// the real one.
import { describe, expect, test } from '@jest/globals';
import type { DesiredPatch, LabelSelector, LivePatch } from '../../../src/api/generated/types.js';
import type { KernelRelease, LivePatchName, NodeName, PatchName } from '../../../src/api/names.js';
import type { Plan } from '../../../src/controller/plan.js';
import { planRollout } from '../../../src/controller/planner.js';
import {
  AGENT_STALE_MS,
  classifyNodes,
  kernelFor,
  matchesSelector,
  patchNameOwner,
  rolloutOrder,
  type NodeSlot,
} from '../../../src/controller/targets.js';
import {
  at,
  deleted,
  edit,
  entry,
  Fleet,
  inFlight,
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
  withMetadata,
  T0,
  type Pass,
} from './fixtures.js';

const names = (fleet: Fleet): NodeName[] => fleet.nodes.map((n) => n.name);
const order = (fleet: Fleet, name = LP): NodeName[] => rolloutOrder(name, names(fleet));
const slotOf = (slots: readonly NodeSlot[], name: string): NodeSlot | undefined =>
  slots.find((s) => s.node.name === name);
const phases = (passes: readonly Pass[]): string[] =>
  passes.map((p) => p.plan.phase).filter((p, i, all) => all[i - 1] !== p);
const withEntry = (fleet: Fleet): string[] =>
  names(fleet).filter((n) => fleet.desired(n) !== undefined);

function nth<T>(list: readonly T[], i: number): T {
  const value = list[i];
  if (value === undefined) throw new Error(`no element ${i}`);
  return value;
}

describe('which nodes a LivePatch is for', () => {
  const labels = { 'livepatch.io/pool': 'web', zone: 'a' };
  test.each<[string, LabelSelector | undefined, boolean]>([
    ['no selector selects every node', undefined, true],
    ['an empty selector selects every node', {}, true],
    ['matchLabels that match', { matchLabels: { 'livepatch.io/pool': 'web' } }, true],
    ['matchLabels with another value', { matchLabels: { 'livepatch.io/pool': 'db' } }, false],
    [
      'matchLabels need every label',
      { matchLabels: { 'livepatch.io/pool': 'web', x: 'y' } },
      false,
    ],
    ['In', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, true],
    [
      'In, value absent',
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
      false,
    ],
    ['NotIn', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['b'] }] }, true],
    [
      'NotIn, label missing',
      { matchExpressions: [{ key: 'gpu', operator: 'NotIn', values: ['x'] }] },
      true,
    ],
    [
      'NotIn, value listed',
      { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      false,
    ],
    ['Exists', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, true],
    ['Exists, label missing', { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, false],
    ['DoesNotExist', { matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, true],
    [
      'DoesNotExist, label present',
      { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] },
      false,
    ],
    [
      'matchLabels and matchExpressions must both hold',
      {
        matchLabels: { 'livepatch.io/pool': 'web' },
        matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }],
      },
      false,
    ],
  ])('%s', (_what, selector, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });

  test('only nodes the selector picks are targeted; the others are not counted at all', () => {
    const fleet = new Fleet(
      [
        node('web-1', { labels: { 'livepatch.io/pool': 'web', zone: 'a' } }),
        node('web-2', { labels: { 'livepatch.io/pool': 'web', zone: 'b' } }),
        node('db-1', { labels: { 'livepatch.io/pool': 'db', zone: 'a' } }),
      ],
      T0,
    );
    const lp = livePatch({
      spec: {
        nodeSelector: {
          matchLabels: { 'livepatch.io/pool': 'web' },
          matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['b'] }],
        },
      },
    });
    const slots = classifyNodes(lp, fleet.nodes, fleet.lpns, T0);
    expect(slots.map((s) => [s.node.name, s.kind])).toEqual([['web-1', 'target']]);
  });

  const kernels = [
    { releasePattern: '^6\\.1\\.0-', module: module('pattern') },
    { release: K26, module: module('exact') },
  ];
  test.each<[string, KernelRelease | undefined, string | undefined]>([
    ['an exact release beats a pattern listed before it', K26, 'exact'],
    ['a release without an exact entry takes the pattern', K27, 'pattern'],
    ['a kernel matching nothing has no build', K5, undefined],
    ['a node with no known kernel has no build', undefined, undefined],
  ])('%s', (_what, release, tag) => {
    expect(kernelFor(kernels, release)?.module).toEqual(tag ? module(tag) : undefined);
  });

  test('a node whose kernel has no build is notApplicable, gets no entry and never fails the rollout', () => {
    const fleet = new Fleet([node('a'), node('b'), node('old', { kernel: K5 })], T0);
    const sim = simulate(livePatch(), fleet);
    expect(slotOf(sim.passes[0]?.slots ?? [], 'old')?.kind).toBe('notApplicable');
    expect(fleet.desired('old')).toBeUndefined();
    expect(sim.lp.status?.phase).toBe('Complete');
    expect(sim.lp.status?.nodes).toMatchObject({
      targeted: 2,
      patched: 2,
      notApplicable: 1,
      failed: 0,
    });
  });

  test.each<[string, (fleet: Fleet) => void, RegExp]>([
    [
      'the node is not Ready',
      (f) => (f.nodes = f.nodes.map((n) => (n.name === 'x' ? { ...n, ready: false } : n))),
      /not Ready/,
    ],
    [
      'its agent last reported 91 s ago',
      (f) => f.lpns.set('x', lpn('x', { heartbeat: at(-91) })),
      /91s ago/,
    ],
    ['its agent never reported', (f) => f.lpns.set('x', lpn('x')), /no agent/],
    ['it has no LivePatchNode', (f) => f.lpns.delete('x'), /no agent/],
  ])('a node is unknown, and never started, when %s', (_what, breakIt, why) => {
    const fleet = new Fleet([node('a'), node('x'), node('b')], T0);
    breakIt(fleet);
    fleet.gone.add('x');
    const slots = classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0);
    const slot = slotOf(slots, 'x');
    expect(slot?.kind).toBe('unknown');
    expect(slot?.kind === 'unknown' ? slot.why : '').toMatch(why);
    const sim = simulate(livePatch(), fleet, { now: T0 });
    expect(sim.passes.some((p) => p.plan.writes.has('x' as NodeName))).toBe(false);
    expect(sim.lp.status?.nodes).toMatchObject({ targeted: 3, patched: 2, unknown: 1 });
  });

  test('a node Loading for long while its agent reports (a module mirror down): in flight, holding its slot, not failed, no rollback', () => {
    const fleet = new Fleet([node('a'), node('b')], T0);
    const now = at(10 * 60);
    const waiting = observed('Loading', {
      message:
        'cannot download …: the server answers HTTP 503 Service Unavailable; attempt 9 failed, retrying at …',
    });
    fleet.lpns.set('a', lpn('a', { desired: [entry()], observed: [waiting], heartbeat: now }));
    fleet.lpns.set('b', lpn('b', { heartbeat: now }));
    const lp = livePatch();
    const slots = classifyNodes(lp, fleet.nodes, fleet.lpns, now);
    expect(slotOf(slots, 'a')).toMatchObject({ kind: 'target', progress: 'inFlight' });
    const plan = planRollout(lp, slots, now);
    expect(plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight', started: [] });
    expect(plan.writes.has('b' as NodeName)).toBe(false);
  });

  test('an agent that reported 89 s ago still counts as there', () => {
    const fleet = new Fleet([node('x')], T0);
    fleet.lpns.set('x', lpn('x', { heartbeat: T0 - AGENT_STALE_MS + 1000 }));
    expect(classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0)[0]?.kind).toBe('target');
  });

  test.each<[string, (fleet: Fleet, busy: string) => void]>([
    [
      'another patch has an entry still in flight there',
      (f, busy) =>
        f.lpns.set(
          busy,
          lpn(busy, {
            heartbeat: T0,
            desired: [
              entry({ livePatch: 'cve-other' as LivePatchName, patchName: 'other' as PatchName }),
            ],
          }),
        ),
    ],
    [
      'its agent reports another patch in transition',
      (f, busy) => f.lpns.set(busy, lpn(busy, { heartbeat: T0, transitioning: 'kpatch_foo' })),
    ],
  ])('a busy node is skipped by the wave when %s', (_what, makeBusy) => {
    const fleet = Fleet.of(3, T0);
    const [first, second] = [nth(order(fleet), 0), nth(order(fleet), 1)];
    makeBusy(fleet, first);
    const plan = planRollout(
      livePatch(),
      classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan.started).toEqual([second]);
    expect(plan.writes.has(first)).toBe(false);
  });

  test('when every next node is busy, nothing starts and the controller looks again soon', () => {
    const fleet = new Fleet([node('a')], T0);
    fleet.lpns.set('a', lpn('a', { heartbeat: T0, transitioning: 'kpatch_foo' }));
    const plan = planRollout(
      livePatch(),
      classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan).toMatchObject({ phase: 'Progressing', reason: 'WaitingForNodes', started: [] });
    expect(plan.requeueAfterMs).toBeGreaterThan(0);
  });
});

describe('rolling pacing', () => {
  test('20 nodes at maxUnavailable 25%: never more than 5 in flight, each started once in rollout order, Complete', () => {
    const fleet = Fleet.of(20, T0);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: '25%' } } }), fleet, {
      perTick: 2,
    });
    const started = sim.passes.flatMap((p) => p.plan.started);
    expect(started).toEqual(order(fleet));
    expect(sim.maxInFlight).toBe(5);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '20/20' });
  });

  test('a node that settles frees its slot: the next node starts at once, the others go on', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 3 } } }), fleet, at(0));
    expect(pass.plan.started).toEqual(order(fleet).slice(0, 3));
    const [done] = fleet.settle(at(1), 1);
    pass = reconcile(pass.lp, fleet, at(1));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(pass.plan.started).toEqual([nth(order(fleet), 3)]);
    expect(inFlight(pass.lp, fleet, at(1))).toHaveLength(3);
    expect(inFlight(pass.lp, fleet, at(1))).not.toContain(done);
  });

  test('a slow node holds one slot only: the fast ones stream past it through the other', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const slow = new Set([nth(order(fleet), 0)]);
    for (let t = 1; t <= 6; t++) {
      fleet.settle(at(t), Infinity, LP, slow);
      pass = reconcile(pass.lp, fleet, at(t));
    }
    expect(pass.status.nodes).toMatchObject({ patched: 5, transitioning: 1, pending: 0 });
    fleet.settle(at(7));
    pass = reconcile(pass.lp, fleet, at(7));
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('a node that goes silent mid-transition keeps its slot: the patch may have taken it down', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const [crashed, fine] = [nth(pass.plan.started, 0), nth(pass.plan.started, 1)];
    fleet.settle(at(1), Infinity, LP, new Set([crashed]));
    fleet.report(crashed, observed('Transitioning'), at(1));
    fleet.gone.add(crashed);
    fleet.nodes = fleet.nodes.map((n) => (n.name === crashed ? { ...n, ready: false } : n));
    pass = reconcile(pass.lp, fleet, at(120));
    expect(fleet.observed(fine)?.phase).toBe('Patched');
    expect(pass.plan.started).toHaveLength(1);
    expect(pass.plan.message).toContain(crashed);
    fleet.settle(at(121), Infinity, LP, new Set([crashed]));
    pass = reconcile(pass.lp, fleet, at(122));
    expect(pass.plan.started).toHaveLength(1);
    expect(inFlight(pass.lp, fleet, at(122))).toHaveLength(1);
    expect(pass.status.nodes).toMatchObject({ unknown: 1, patched: 2 });
  });

  test('a stalled node frees its slot like a patched one when the failure budget allows it', () => {
    const fleet = Fleet.of(4, T0);
    fleet.stallOn.add(nth(order(fleet), 0));
    const lp = livePatch({ spec: { failureBudget: 1, rollout: { maxUnavailable: 2 } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '3/4' });
  });

  test('bakeTime: a patched node keeps its slot until its agent reports the bake over, then the next starts', () => {
    const fleet = Fleet.of(3, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 1, bakeTime: '30s' } } });
    let pass = reconcile(lp, fleet, at(0));
    const first = nth(pass.plan.started, 0);
    expect(fleet.desired(first)?.bakeTime).toBe('30s');
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(10));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight', started: [] });
    expect(pass.plan.message).toContain('1 baking');
    expect(pass.status.nodes).toMatchObject({ patched: 1 });
    pass = reconcile(pass.lp, fleet, at(34));
    expect(pass.plan.started).toEqual([]);
    pass = reconcile(pass.lp, fleet, at(35));
    expect(fleet.observed(first)?.taintAfterBake).toBe(0);
    expect(pass.plan.started).toEqual([nth(order(fleet), 1)]);
  });

  test('a rollout with a bake is Complete only once the last node has baked', () => {
    const fleet = Fleet.of(2, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, bakeTime: '1h' } } });
    let pass = reconcile(lp, fleet, at(0));
    expect(pass.plan.started).toHaveLength(2);
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan.phase).toBe('Progressing');
    pass = reconcile(pass.lp, fleet, at(3601));
    expect(pass.plan.phase).toBe('Complete');
  });

  test('a node that joins mid-rollout is patched later; one that leaves is no longer counted', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    expect(pass.plan.started).toHaveLength(2);
    const joined = node('node-99');
    fleet.nodes = [...fleet.nodes, joined];
    fleet.lpns.set(joined.name, lpn(joined.name, { heartbeat: at(1) }));
    const leaving = fleet.nodes.find(
      (n) => !pass.plan.started.includes(n.name) && n.name !== joined.name,
    );
    fleet.nodes = fleet.nodes.filter((n) => n !== leaving);
    fleet.settle(at(1));
    fleet.beat(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.status.nodes).toMatchObject({ targeted: 4, patched: 2 });
    for (let t = 3; pass.status.phase !== 'Complete' && t < 20; t++) {
      fleet.settle(at(t));
      pass = reconcile(pass.lp, fleet, at(t));
    }
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
    expect(fleet.desired(joined.name)?.state).toBe('Enabled');
    expect(leaving && fleet.desired(leaving.name)).toBeUndefined();
  });

  test('the rollout order is the same on every pass, whatever order the nodes are listed in', () => {
    const fleet = Fleet.of(12, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 4 } } });
    const plan = (nodes: Fleet['nodes']): readonly NodeName[] =>
      planRollout(lp, classifyNodes(lp, nodes, fleet.lpns, T0), T0).started;
    const once = plan(fleet.nodes);
    expect(plan(fleet.nodes)).toEqual(once);
    expect(plan([...fleet.nodes].reverse())).toEqual(once);
    expect(once).toEqual(order(fleet).slice(0, 4));
  });

  test('two LivePatches do not start on the same first nodes', () => {
    const fleet = Fleet.of(20, T0);
    expect(order(fleet, 'cve-a').slice(0, 5)).not.toEqual(order(fleet, 'cve-b').slice(0, 5));
  });

  test('a restarted controller picks up the same rollout from the status and the nodes alone', () => {
    const fleet = Fleet.of(6, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, bakeTime: '30s' } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1), 1);
    pass = reconcile(pass.lp, fleet, at(2));
    const restart = (now: number): Plan =>
      planRollout(
        JSON.parse(JSON.stringify(pass.lp)) as LivePatch,
        classifyNodes(pass.lp, fleet.nodes, fleet.lpns, now),
        now,
      );
    expect(restart(at(20))).toMatchObject({ reason: 'NodesInFlight', started: [] });
    fleet.beat(at(31));
    expect(restart(at(31)).started).toEqual([nth(order(fleet), 2)]);
  });

  test('a pass with nothing to change writes nothing, however the API server orders the fields', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    pass = reconcile(pass.lp, fleet, at(1));
    expect(pass.plan.writes.size).toBe(0);
    fleet.settle(at(2));
    pass = reconcile(pass.lp, fleet, at(3));
    expect(pass.plan.started).toHaveLength(2);
    expect(pass.plan.writes.size).toBe(2);
  });
});

describe('the health gate while a node bakes', () => {
  const W = 1 << 9;
  const baking = (o: { failureBudget?: number; action?: 'Rollback' | 'Halt' | 'Ignore' } = {}) =>
    livePatch({
      spec: {
        failureBudget: o.failureBudget ?? 0,
        stall: { action: o.action ?? 'Rollback' },
        rollout: { maxUnavailable: 1, bakeTime: '5m' },
      },
    });

  /** Starts the first node, patches it at 10 s, lets `harm` happen to it, and reconciles at `when`. */
  function harmed(
    harm: (fleet: Fleet, victim: NodeName) => void,
    when: number,
    lp = baking(),
  ): { pass: Pass; victim: NodeName; fleet: Fleet } {
    const fleet = Fleet.of(3, T0);
    let pass = reconcile(lp, fleet, at(0));
    const victim = nth(pass.plan.started, 0);
    fleet.settle(at(10));
    pass = reconcile(pass.lp, fleet, at(11));
    harm(fleet, victim);
    return { pass: reconcile(pass.lp, fleet, when), victim, fleet };
  }

  const notReady = (fleet: Fleet, victim: NodeName): void => {
    fleet.nodes = fleet.nodes.map((n) => (n.name === victim ? { ...n, ready: false } : n));
  };
  const silent = (fleet: Fleet, victim: NodeName): void => {
    fleet.gone.add(victim);
  };
  const warned = (fleet: Fleet, victim: NodeName): void => {
    fleet.taint(victim, W);
  };

  test.each<[string, (fleet: Fleet, victim: NodeName) => void, number, string]>([
    ['its Node turns NotReady', notReady, at(20), 'NodeNotReady'],
    ['its agent stops reporting', silent, at(11 + AGENT_STALE_MS / 1000 + 1), 'AgentSilent'],
    ['its kernel gains the W (warning) taint', warned, at(20), 'KernelTainted'],
  ])(
    'a baking node whose %s fails, with the reason in status and an Event',
    (_w, harm, when, reason) => {
      const { pass, victim } = harmed(harm, when, baking({ failureBudget: 1 }));
      expect(pass.status.unhealthyNodes).toEqual([
        expect.objectContaining({ node: victim, reason, generation: 1 }),
      ]);
      expect(pass.status.nodes).toMatchObject({ failed: 1, patched: 0 });
      expect(pass.events).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'NodeUnhealthy' }),
      );
      expect(pass.events.find((e) => e.reason === 'NodeUnhealthy')?.message).toContain(victim);
      // Within the budget, its slot frees: the next node starts.
      expect(pass.plan.started).toEqual([nth(order(Fleet.of(3, T0)), 1)]);
    },
  );

  test('over the failure budget, the stall action fires: Rollback unpatches every node', () => {
    const { pass, fleet } = harmed(warned, at(20));
    expect(pass.plan.phase).toBe('RollingBack');
    const sim = simulate(pass.lp, fleet, { now: at(21) });
    expect(sim.lp.status?.phase).toBe('RolledBack');
    expect(sim.lp.status?.unhealthyNodes).toHaveLength(1);
  });

  test('the taint before and after the load is recorded, as the kernel prints it', () => {
    const { pass } = harmed((fleet, victim) => {
      fleet.taint(victim, (1 << 12) | (1 << 13) | (1 << 15) | W);
    }, at(20));
    const [record] = pass.status.unhealthyNodes ?? [];
    expect(record).toMatchObject({ reason: 'KernelTainted', taintBefore: '', taintAfter: 'WOEK' });
    expect(record?.message).toContain('gained taint W');
  });

  test('a module that taints the kernel on load fails its node when it is Patched', () => {
    const fleet = Fleet.of(2, T0);
    let pass = reconcile(baking({ failureBudget: 1 }), fleet, at(0));
    fleet.loadTaint.set(nth(pass.plan.started, 0), W);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(6));
    expect(pass.status.unhealthyNodes?.[0]).toMatchObject({
      reason: 'KernelTainted',
      taintAfter: 'W',
    });
  });

  test.each([
    [
      'O (out-of-tree), E (unsigned) and K (livepatch) are not damage',
      (1 << 12) | (1 << 13) | (1 << 15),
    ],
    ['a taint the node had before the load is not new', 0],
  ])('%s: the node bakes and the rollout completes', (_what, loadTaint) => {
    const fleet = Fleet.of(2, T0);
    for (const n of fleet.nodes) fleet.taint(n.name, loadTaint === 0 ? W : 0);
    for (const n of fleet.nodes) fleet.loadTaint.set(n.name, loadTaint);
    const sim = simulate(baking(), fleet, { tickMs: 60_000 });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '2/2' });
    expect(sim.lp.status?.unhealthyNodes).toBeUndefined();
  });

  test('a node that failed its bake stays failed when it comes back; an edit clears it', () => {
    const { pass, victim, fleet } = harmed(notReady, at(20), baking({ failureBudget: 1 }));
    fleet.nodes = fleet.nodes.map((n) => ({ ...n, ready: true }));
    const back = reconcile(pass.lp, fleet, at(30));
    expect(back.status.unhealthyNodes?.map((u) => u.node)).toEqual([victim]);
    expect(back.status.nodes).toMatchObject({ failed: 1 });
    const edited = reconcile(edit(back.lp, { failureBudget: 2 }), fleet, at(31));
    expect(edited.status.unhealthyNodes).toBeUndefined();
    expect(edited.status.nodes).toMatchObject({ failed: 0 });
  });

  test('a node that turns NotReady after its bake is not held against the patch', () => {
    const fleet = Fleet.of(1, T0);
    const sim = simulate(baking(), fleet, { tickMs: 60_000 });
    expect(sim.lp.status?.phase).toBe('Complete');
    fleet.nodes = fleet.nodes.map((n) => ({ ...n, ready: false }));
    const later = reconcile(sim.lp, fleet, sim.now + 1000);
    expect(later.status.unhealthyNodes).toBeUndefined();
    expect(later.status.phase).toBe('Complete');
  });
});

describe('steps', () => {
  const steps = [{ nodes: 1 }, { pause: { duration: '10m' } }, { percent: 50 }];

  test('a canary node, a 10 minute pause, then half the fleet, then every node', () => {
    const fleet = Fleet.of(10, T0);
    let pass = reconcile(
      livePatch({ spec: { rollout: { maxUnavailable: 2, steps } } }),
      fleet,
      at(0),
    );
    expect(pass.plan.started).toHaveLength(1);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(10));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    expect(pass.plan.requeueAfterMs).toBe(600_000);
    expect(pass.status.currentStep).toBe(1);
    pass = reconcile(pass.lp, fleet, at(10 + 300));
    expect(pass.plan).toMatchObject({ phase: 'Paused', started: [] });
    expect(pass.plan.requeueAfterMs).toBe(300_000);
    pass = reconcile(pass.lp, fleet, at(10 + 600));
    expect(pass.plan).toMatchObject({ phase: 'Progressing' });
    expect(pass.plan.started).toHaveLength(2);
    expect(pass.status.currentStep).toBe(2);
    const sim = simulate(pass.lp, fleet, { now: at(611) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '10/10' });
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
  });

  test('a percent step grows the patched set to its share, rounded up, and no further before the next step', () => {
    const fleet = Fleet.of(10, T0);
    const lp = livePatch({
      spec: { rollout: { maxUnavailable: 10, steps: [{ percent: 30 }, { pause: {} }] } },
    });
    const sim = simulate(lp, fleet, { maxPasses: 10 });
    expect(sim.lp.status).toMatchObject({ phase: 'Paused', summary: '3/10', currentStep: 1 });
  });

  test('an empty pause holds until spec.rollout.paused is changed, then the rollout goes on', () => {
    const fleet = Fleet.of(4, T0);
    const lp = livePatch({ spec: { rollout: { steps: [{ nodes: 1 }, { pause: {} }] } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    expect(pass.plan.requeueAfterMs).toBeUndefined();
    pass = reconcile(pass.lp, fleet, at(3600));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    // Each edit is a new generation, as the API server counts them.
    pass = reconcile(edit(pass.lp, { rollout: { paused: true } }), fleet, at(3601));
    expect(pass.plan).toMatchObject({ phase: 'Paused', started: [] });
    pass = reconcile(edit(pass.lp, { rollout: { paused: false } }), fleet, at(3602));
    expect(pass.plan).toMatchObject({ phase: 'Progressing' });
    expect(pass.plan.started).toHaveLength(1);
    const sim = simulate(pass.lp, fleet, { now: at(3603) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('an edit during a timed pause neither skips nor restarts it', () => {
    const fleet = Fleet.of(4, T0);
    const lp = livePatch({
      spec: { rollout: { steps: [{ nodes: 1 }, { pause: { duration: '10m' } }] } },
    });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    pass = reconcile(edit(pass.lp, { cves: ['CVE-2024-1086'] }), fleet, at(302));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    expect(pass.plan.requeueAfterMs).toBe(300_000);
  });

  test('spec.rollout.paused starts no new node and reverses nothing, and unpausing goes on', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const first = pass.plan.started;
    pass = reconcile(edit(pass.lp, { rollout: { paused: true } }), fleet, at(1));
    fleet.settle(at(2));
    for (const t of [3, 60, 3600]) {
      pass = reconcile(pass.lp, fleet, at(t));
      expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'Paused', started: [] });
    }
    expect(withEntry(fleet).sort()).toEqual([...first].sort());
    expect(first.map((n) => fleet.observed(n)?.phase)).toEqual(['Patched', 'Patched']);
    const sim = simulate(edit(pass.lp, { rollout: { paused: false } }), fleet, { now: at(3601) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('an unrelated edit does not release an empty pause', () => {
    const fleet = Fleet.of(3, T0);
    const lp = livePatch({ spec: { rollout: { steps: [{ nodes: 1 }, { pause: {} }] } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    pass = reconcile(edit(pass.lp, { cves: ['CVE-2024-1086'] }), fleet, at(3));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
  });

  test('an edit to a complete rollout does not stop it at its pause steps again', () => {
    const fleet = Fleet.of(4, T0);
    const steps = [{ nodes: 1 }, { pause: { duration: '10m' } }, { pause: {} }];
    const sim = simulate(livePatch({ spec: { rollout: { steps } } }), fleet, { maxPasses: 20 });
    const released = reconcile(edit(sim.lp, { rollout: { paused: true } }), fleet, sim.now);
    const done = simulate(edit(released.lp, { rollout: { paused: false } }), fleet, {
      now: sim.now + 1,
    });
    expect(done.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
    const again = reconcile(edit(done.lp, { cves: ['CVE-2024-1086'] }), fleet, done.now);
    expect(again.plan).toMatchObject({ phase: 'Complete', started: [] });
  });

  test('a halted rollout retried by an edit does not repeat the pause it had passed', () => {
    const { fleet } = stallingFleet(4, 2);
    const lp = livePatch({
      spec: {
        stall: { action: 'Halt' },
        rollout: { steps: [{ nodes: 1 }, { pause: { duration: '10m' } }] },
      },
    });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Failed', currentStep: 2 });
    const retry = reconcile(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, sim.now);
    expect(retry.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
  });

  test('after a rollback, the retried rollout holds at its pause step again', () => {
    const { fleet } = stallingFleet(4, 1);
    const steps = [{ nodes: 2 }, { pause: { duration: '10m' } }];
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, steps } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    let pass = reconcile(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, sim.now);
    expect(pass.plan.started).toHaveLength(2);
    fleet.settle(sim.now + 1);
    pass = reconcile(pass.lp, fleet, sim.now + 2);
    expect(pass.plan).toMatchObject({
      phase: 'Paused',
      reason: 'PauseStep',
      requeueAfterMs: 600_000,
    });
  });

  test('a LivePatch created paused starts nothing', () => {
    const fleet = Fleet.of(3, T0);
    const plan = planRollout(
      livePatch({ spec: { rollout: { paused: true } } }),
      classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan).toMatchObject({ phase: 'Paused', started: [] });
    expect(plan.writes.has('b' as NodeName)).toBe(false);
  });
});

/** A fleet of `count` nodes whose node at rollout position `stallAt` stalls. */
function stallingFleet(count: number, ...stallAt: number[]): { fleet: Fleet; stalled: string[] } {
  const fleet = Fleet.of(count, T0);
  const stalled = stallAt.map((i) => nth(order(fleet), i));
  for (const n of stalled) fleet.stallOn.add(n);
  return { fleet, stalled };
}

describe('stall policy', () => {
  test('Rollback: every node of the patch is switched to Disabled, maxUnavailable at a time, and ends RolledBack', () => {
    const { fleet, stalled } = stallingFleet(8, 4);
    const lp = livePatch({
      spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Rollback' } },
    });
    const sim = simulate(lp, fleet);
    expect(phases(sim.passes)).toEqual(['Progressing', 'RollingBack', 'RolledBack']);
    const rollback = sim.passes.find((p) => p.plan.phase === 'RollingBack');
    expect(rollback?.events.map((e) => e.reason)).toContain('RollbackStarted');
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    const holders = withEntry(fleet);
    expect(holders).toHaveLength(6);
    expect(holders.map((n) => fleet.desired(n)?.state)).toEqual(holders.map(() => 'Disabled'));
    expect(holders.filter((n) => fleet.observed(n)?.phase !== 'Unpatched')).toEqual(stalled);
    expect(sim.lp.status?.nodes).toMatchObject({ patched: 0, reverted: 5, stalled: 1 });
  });

  test('a node whose guard is reversing its stall counts as stalled at once: Rollback does not wait for the reversal', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const stuck = nth(pass.plan.started, 0);
    fleet.report(
      stuck,
      observed('Reversing', { transition: true, enabled: false, blockingTasks: [QEMU] }),
      at(61),
    );
    pass = reconcile(pass.lp, fleet, at(61));
    expect(pass.plan.phase).toBe('RollingBack');
    expect(pass.status.stalledNodes?.map((s) => s.node)).toEqual([stuck]);
    // It unpatches by itself; RolledBack waits for it, and its Stalled report (with the tasks) stays.
    expect(fleet.desired(stuck)?.state).toBe('Enabled');
    fleet.settle(at(62), Infinity, LP, new Set([stuck]));
    pass = reconcile(pass.lp, fleet, at(63));
    expect(pass.plan.phase).toBe('RollingBack');
    fleet.report(stuck, observed('Stalled', { blockingTasks: [QEMU] }), at(64));
    const sim = simulate(pass.lp, fleet, { now: at(64) });
    expect(sim.lp.status?.phase).toBe('RolledBack');
    expect(sim.lp.status?.stalledNodes?.map((s) => s.node)).toEqual([stuck]);
  });

  test('Rollback reverses the nodes still in transition first', () => {
    const fleet = Fleet.of(4, T0);
    const [a, b] = [nth(order(fleet), 0), nth(order(fleet), 1)];
    fleet.lpns.set(
      a,
      lpn(a, {
        heartbeat: T0,
        desired: [entry()],
        observed: [observed('Stalled', { blockingTasks: [{ pid: 1, comm: 'x' }] })],
      }),
    );
    fleet.lpns.set(
      b,
      lpn(b, { heartbeat: T0, desired: [entry()], observed: [observed('Transitioning')] }),
    );
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 1 } } });
    const plan = planRollout(lp, classifyNodes(lp, fleet.nodes, fleet.lpns, T0), T0);
    expect(plan).toMatchObject({ phase: 'RollingBack', started: [b] });
    expect(plan.writes.get(b)).toMatchObject({ state: 'Disabled' });
    expect(plan.writes.has(a)).toBe(false);
  });

  test('Halt: the rollout ends Failed and no new node starts', () => {
    const { fleet, stalled } = stallingFleet(8, 2);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Halt' } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status?.phase).toBe('Failed');
    expect(withEntry(fleet)).toHaveLength(4);
    const later = reconcile(sim.lp, fleet, sim.now + 3_600_000);
    expect(later.plan).toMatchObject({ phase: 'Failed', started: [] });
    expect(later.plan.writes.size).toBe(0);
    expect(fleet.desired(nth(stalled, 0))?.state).toBe('Enabled');
    expect(later.status.nodes).toMatchObject({ patched: 3, stalled: 1, pending: 4 });
  });

  test('Ignore: the rollout goes past the stalled node and completes', () => {
    const { fleet } = stallingFleet(8, 2);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Ignore' } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '7/8' });
    expect(sim.lp.status?.nodes).toMatchObject({ stalled: 1 });
  });

  test.each<[string, number[], string]>([
    ['failureBudget 1 tolerates one stalled node', [1], 'Complete'],
    ['failureBudget 1 rolls back at the second stalled node', [1, 5], 'RolledBack'],
  ])('%s', (_what, stallAt, end) => {
    const { fleet } = stallingFleet(8, ...stallAt);
    const lp = livePatch({ spec: { failureBudget: 1, rollout: { maxUnavailable: 2 } } });
    expect(simulate(lp, fleet).lp.status?.phase).toBe(end);
  });

  test('a node that failed to load counts against the failure budget like a stalled one', () => {
    const fleet = Fleet.of(3, T0);
    const first = nth(order(fleet), 0);
    const lp = livePatch({ spec: { stall: { action: 'Halt' } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.report(first, observed('Failed', { message: 'checksum mismatch' }), at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan.phase).toBe('Failed');
  });
});

/** A fleet where a rollout has completed. */
function completed(count: number): { fleet: Fleet; lp: LivePatch; now: number } {
  const fleet = Fleet.of(count, T0);
  const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
  expect(sim.lp.status?.phase).toBe('Complete');
  return { fleet, lp: sim.lp, now: sim.now };
}

describe('disabling and deleting', () => {
  test('state Disabled unpatches every node, maxUnavailable at a time: Disabling, then Disabled', () => {
    const { fleet, lp, now } = completed(5);
    const sim = simulate(edit(lp, { state: 'Disabled' }), fleet, { now });
    expect(phases(sim.passes)).toEqual(['Disabling', 'Disabled']);
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    expect(names(fleet).map((n) => fleet.observed(n)?.phase)).toEqual(
      names(fleet).map(() => 'Unpatched'),
    );
    expect(sim.lp.status?.nodes).toMatchObject({ patched: 0, reverted: 5 });
    expect(sim.passes.flatMap((p) => p.events.map((e) => e.reason))).toEqual([
      'Disabling',
      'Disabled',
    ]);
  });

  test('deletion unpatches every node, then releases the finalizer and removes every entry', () => {
    const { fleet, lp, now } = completed(4);
    const sim = simulate(deleted(lp, now), fleet, { now });
    expect(phases(sim.passes)).toEqual(['Disabling', 'Disabled']);
    const releasing = sim.passes.filter((p) => p.plan.releaseFinalizer);
    expect(sim.passes[0]?.plan.releaseFinalizer).toBe(false);
    expect(releasing.length).toBeGreaterThan(0);
    expect([...(releasing[0]?.plan.writes.entries() ?? [])].sort()).toEqual(
      names(fleet).map((n) => [n, null]),
    );
    expect(withEntry(fleet)).toEqual([]);
  });

  test('a node whose agent is gone does not hold up deletion', () => {
    const { fleet, lp, now } = completed(4);
    const lost = nth(names(fleet), 0);
    fleet.gone.add(lost);
    const later = now + 120_000;
    const sim = simulate(deleted(lp, later), fleet, { now: later });
    const released = sim.passes.find((p) => p.plan.releaseFinalizer);
    expect(released?.plan.writes.get(lost)).toBeNull();
    expect(fleet.desired(lost)).toBeUndefined();
  });
});

describe('a LivePatchNode entry edited by hand', () => {
  /** Rewrites one node's entry as a person with kubectl edit would. */
  function handEdit(fleet: Fleet, name: string, change: Partial<DesiredPatch>): void {
    const current = fleet.desired(name);
    if (!current) throw new Error(`no entry on ${name}`);
    fleet.apply(LP, new Map([[name as NodeName, { ...current, ...change }]]));
  }

  test.each<[string, Partial<DesiredPatch>]>([
    ['another module', { module: { url: 'https://evil.example/x.ko', sha256: 'e'.repeat(64) } }],
    ['force allowed', { allowForce: true }],
    ['another patchName', { patchName: 'livepatch_other' as PatchName }],
    ['a longer stall timeout', { stallTimeout: '24h' }],
    ['a made-up generation', { generation: 99 }],
  ])('%s: the controller writes the entry back on its next pass', (_what, change) => {
    const fleet = Fleet.of(3, T0);
    const pass = reconcile(livePatch(), fleet, at(0));
    const victim = nth(pass.plan.started, 0);
    const written = fleet.desired(victim);
    handEdit(fleet, victim, change);
    const next = reconcile(pass.lp, fleet, at(1));
    expect(next.plan.writes.get(victim)).toEqual(written);
    expect(fleet.desired(victim)).toEqual(written);
  });

  test('on a patched node too, and on a stalled one within its generation', () => {
    const fleet = Fleet.of(2, T0);
    fleet.stallOn.add(nodeName(2));
    const sim = simulate(
      livePatch({
        spec: { rollout: { maxUnavailable: 2 }, failureBudget: 1, stall: { action: 'Ignore' } },
      }),
      fleet,
    );
    for (const n of [nodeName(1), nodeName(2)]) {
      const written = fleet.desired(n);
      handEdit(fleet, n, { allowForce: true });
      reconcile(sim.lp, fleet, sim.now + 1);
      expect(fleet.desired(n)).toEqual(written);
    }
    expect(fleet.observed(nodeName(2))?.phase).toBe('Stalled');
  });

  test('a Disabled entry of a rollback is written back too', () => {
    const { fleet } = stallingFleet(4, 1);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const n = nth(
      names(fleet).filter((x) => fleet.desired(x)?.state === 'Disabled'),
      0,
    );
    const written = fleet.desired(n);
    handEdit(fleet, n, { allowForce: true, stallTimeout: '24h' });
    reconcile(sim.lp, fleet, sim.now + 1);
    expect(fleet.desired(n)).toEqual(written);
  });
});

describe('two LivePatches with one patchName', () => {
  test('the younger one does nothing and says which LivePatch owns the name', () => {
    const older = withMetadata(livePatch({ name: 'first' }), { creationTimestamp: new Date(T0) });
    const younger = withMetadata(livePatch({ name: 'second' }), {
      creationTimestamp: new Date(T0 + 1000),
    });
    expect(patchNameOwner(older, [older, younger])).toBeUndefined();
    expect(patchNameOwner(younger, [older, younger])).toBe('first');
    const fleet = Fleet.of(3, T0);
    const plan = planRollout(
      younger,
      classifyNodes(younger, fleet.nodes, fleet.lpns, T0),
      T0,
      'first',
    );
    expect(plan).toMatchObject({ phase: 'Failed', reason: 'PatchNameInUse' });
    expect(plan.writes.has('b' as NodeName)).toBe(false);
    expect(plan.message).toContain('LivePatch first already rolls out patchName');
  });
});

describe('a node that cannot unpatch', () => {
  test('a disable that stalled with the patch still enabled fails the LivePatch and keeps the finalizer', () => {
    const { fleet, lp, now } = completed(3);
    const stuck = nth(names(fleet), 0);
    let pass = reconcile(deleted(lp, now), fleet, now);
    fleet.report(
      stuck,
      observed('Stalled', {
        observedGeneration: fleet.desired(stuck)?.generation ?? 1,
        enabled: true,
        message: 'disable stalled (blocked by qemu-kvm[812])',
      }),
      now + 1000,
    );
    for (let t = 2; t < 12; t++) {
      fleet.settle(now + t * 1000);
      fleet.beat(now + t * 1000);
      pass = reconcile(pass.lp, fleet, now + t * 1000);
    }
    expect(pass.plan).toMatchObject({
      phase: 'Failed',
      reason: 'UnpatchFailed',
      releaseFinalizer: false,
    });
    expect(pass.plan.message).toContain(`${stuck} (disable stalled (blocked by qemu-kvm[812]))`);
    expect(pass.plan.message).toContain('remove the finalizer');
    expect(fleet.desired(stuck)).toBeDefined();
  });

  test('a node whose agent is away gets its Disabled entry at once, to act on when it returns', () => {
    const { fleet, lp, now } = completed(3);
    const away = nth(names(fleet), 1);
    fleet.gone.add(away);
    const later = now + 120_000;
    fleet.beat(later);
    reconcile(edit(lp, { state: 'Disabled' }), fleet, later);
    expect(fleet.desired(away)?.state).toBe('Disabled');
  });
});

describe('a new generation', () => {
  test('patched nodes keep their entry and stay counted patched; stalled nodes of the old generation are tried again', () => {
    const { fleet, stalled } = stallingFleet(6, 1);
    const sim = simulate(
      livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Halt' } } }),
      fleet,
    );
    expect(sim.lp.status).toMatchObject({ phase: 'Failed', summary: '1/6' });
    const patched = names(fleet).filter((n) => fleet.observed(n)?.phase === 'Patched');
    const before = new Map(patched.map((n) => [n, fleet.desired(n)]));
    const lp = edit(sim.lp, { stall: { timeout: '5m' } });
    let pass = reconcile(lp, fleet, sim.now);
    for (const n of patched)
      expect(pass.plan.writes.get(n)).toEqual({
        ...before.get(n),
        generation: 2,
        stallTimeout: '5m',
      });
    expect(pass.plan.started).toContain(nth(stalled, 0));
    expect(pass.status.nodes).toMatchObject({ patched: 1, stalled: 0 });
    // Before the agents answer for generation 2, the patched nodes are still patched.
    pass = reconcile(pass.lp, fleet, sim.now + 1000);
    expect(pass.status.nodes).toMatchObject({ patched: 1 });
    for (const n of patched) expect(inFlight(pass.lp, fleet, sim.now + 1000)).not.toContain(n);
    const done = simulate(pass.lp, fleet, { now: sim.now + 2000 });
    expect(done.lp.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('a complete rollout stays Complete through an edit, with no second Completed event', () => {
    const fleet = Fleet.of(4, T0);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    let pass = reconcile(edit(sim.lp, { cves: ['CVE-2024-1086'] }), fleet, sim.now);
    const passes = [pass];
    pass = reconcile(pass.lp, fleet, sim.now + 1);
    passes.push(pass);
    fleet.settle(sim.now + 2);
    passes.push(reconcile(pass.lp, fleet, sim.now + 3));
    expect(passes.map((p) => p.status.phase)).toEqual(['Complete', 'Complete', 'Complete']);
    expect(passes.map((p) => p.status.summary)).toEqual(['4/4', '4/4', '4/4']);
    expect(passes.flatMap((p) => p.events)).toEqual([]);
  });

  test('a new module build: the next nodes load it; patched nodes take it in their entry but do no kernel work', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const first = pass.plan.started;
    fleet.settle(at(1));
    const lp = edit(pass.lp, { kernels: [{ release: K26, module: module('k26v2') }] });
    pass = reconcile(lp, fleet, at(2));
    for (const n of first) {
      expect(fleet.desired(n)?.module).toEqual(module('k26v2'));
      expect(pass.plan.started).not.toContain(n);
      expect(slotOf(pass.slots, n)).toMatchObject({ progress: 'patched' });
    }
    for (const n of pass.plan.started) expect(fleet.desired(n)?.module).toEqual(module('k26v2'));
  });

  test('after a rollback, editing the LivePatch tries the rollout again', () => {
    const { fleet } = stallingFleet(4, 1);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const retry = simulate(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, { now: sim.now });
    expect(retry.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('re-enabling a disabled patch rolls it out again from the first nodes', () => {
    const fleet = Fleet.of(2, T0);
    const lp = livePatch({ spec: { state: 'Disabled', rollout: { bakeTime: '1h' } } });
    fleet.lpns.set(
      'node-01',
      lpn('node-01', {
        heartbeat: T0,
        desired: [entry({ state: 'Disabled' })],
        observed: [observed('Unpatched')],
      }),
    );
    const plan = planRollout(
      edit(lp, { state: 'Enabled' }),
      classifyNodes(lp, fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(plan.started).toHaveLength(1);
  });
});
