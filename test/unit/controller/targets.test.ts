// Which nodes a LivePatch is for (targets.ts): selection, kernel builds, agents
// that are there or gone, nodes busy with another patch; checked through whole
// planning passes.
import { describe, expect, test } from '@jest/globals';
import type { LabelSelector } from '../../../src/api/generated/types.js';
import type { KernelRelease, LivePatchName, NodeName, PatchName } from '../../../src/api/names.js';
import { planRollout } from '../../../src/controller/planner.js';
import { AGENT_STALE_MS } from '../../../src/api/heartbeat.js';
import { classifyNodes, kernelFor, matchesSelector } from '../../../src/controller/targets.js';
import {
  at,
  entry,
  Fleet,
  K26,
  K27,
  K5,
  livePatch,
  lpn,
  module,
  node,
  observed,
  simulate,
  T0,
} from './fixtures.js';
import { nth, order, slotOf } from './plan-helpers.js';

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
