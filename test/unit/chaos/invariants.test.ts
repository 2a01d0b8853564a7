// The fault suite's invariants, each against evidence that satisfies it and
// evidence that breaks it: a checker that cannot fail would prove nothing.
import { describe, expect, test } from '@jest/globals';
import type { NodePatchPhase } from '../../../src/api/generated/types.js';
import type { SimKernelState } from '../../../agent/kernel/sim/simulator.js';
import {
  readingOf,
  type KernelReading,
  type LivePatchSample,
  type NodeSample,
  type Snapshot,
} from '../../../lab/chaos/evidence.js';
import {
  countsBackwards,
  doubleLoads,
  endOfRun,
  extraLoads,
  leftInTransition,
  maxUnavailableExceeded,
  nodesLeftInTransition,
  statusAgainstKernel,
  twoTransitions,
} from '../../../lab/chaos/invariants.js';

const reading = (o: Partial<KernelReading> = {}): KernelReading => ({
  node: 'n1',
  loads: {},
  patches: [],
  modules: [],
  timeline: [],
  ...o,
});

const node = (name: string, ...entries: [string, NodePatchPhase][]): NodeSample => ({
  node: name,
  patches: entries.map(([livePatch, phase]) => ({
    livePatch,
    patchName: `livepatch_${livePatch}`,
    phase,
  })),
});

const snap = (at: number, nodes: NodeSample[], livePatches: LivePatchSample[] = []): Snapshot => ({
  at,
  nodes,
  livePatches,
});

const lp = (
  phase: string,
  generation: number,
  counts: LivePatchSample['counts'],
): LivePatchSample => ({
  name: 'lp',
  generation,
  observedGeneration: generation,
  phase,
  counts,
});

describe('the kernel as evidence', () => {
  test('a reading lists live patch directories, loaded modules, the transition and the load counts', () => {
    const module = { name: 'livepatch_a' } as SimKernelState['loaded'][number]['module'];
    const state = {
      taint: 0,
      signaturesEnforced: false,
      lockedDown: false,
      loaded: [
        { module, enabled: true },
        { module: { ...module, name: 'livepatch_old' }, enabled: false, removeAt: 5 },
      ],
      modules: [{ module, refcnt: 1, forced: false }],
      loads: { livepatch_a: 1, livepatch_old: 1 },
      sleepers: [],
      transition: { patch: 'livepatch_a', target: 1 },
    } as unknown as SimKernelState;
    expect(readingOf('n1', state)).toEqual({
      node: 'n1',
      loads: { livepatch_a: 1, livepatch_old: 1 },
      transition: { patch: 'livepatch_a', target: 1 },
      patches: [{ name: 'livepatch_a', enabled: true }],
      modules: ['livepatch_a'],
      // A state file from before the kernel kept its timeline reads as an empty one.
      timeline: [],
    });
  });
});

describe('no module loaded twice', () => {
  test('one load each is fine', () => {
    expect(doubleLoads(reading({ loads: { livepatch_a: 1, livepatch_b: 1 } }))).toEqual([]);
  });
  test('a second load names the node, the module and the count', () => {
    const found = doubleLoads(reading({ loads: { livepatch_a: 2 } }));
    expect(found).toEqual([
      {
        invariant: 'no module loaded twice',
        node: 'n1',
        seen: 'the kernel loaded livepatch_a 2 times',
      },
    ]);
    expect(extraLoads([reading({ loads: { livepatch_a: 3, livepatch_b: 2 } }), reading()])).toBe(3);
  });
});

describe('no node left in transition', () => {
  test('settled kernel and status', () => {
    expect(leftInTransition(reading(), node('n1', ['a', 'Patched']))).toEqual([]);
  });
  test('a kernel still disabling a patch', () => {
    const r = reading({ transition: { patch: 'livepatch_a', target: 0 } });
    expect(leftInTransition(r, undefined)[0]?.seen).toBe(
      'the kernel is still disabling livepatch_a',
    );
    expect(nodesLeftInTransition([r, reading({ node: 'n2' })], [])).toBe(1);
  });
  test('a status still saying Transitioning', () => {
    expect(leftInTransition(reading(), node('n1', ['a', 'Transitioning']))[0]).toMatchObject({
      livePatch: 'a',
      seen: 'its status still says Transitioning for livepatch_a',
    });
  });
});

describe('status converges to the kernel', () => {
  const enabled = reading({
    patches: [{ name: 'livepatch_a', enabled: true }],
    modules: ['livepatch_a'],
  });
  test.each<[string, KernelReading, NodeSample]>([
    ['Patched and enabled', enabled, node('n1', ['a', 'Patched'])],
    ['Unpatched and unloaded', reading(), node('n1', ['a', 'Unpatched'])],
    ['Stalled and unloaded', reading(), node('n1', ['a', 'Stalled'])],
    [
      'Stalled, disabled, not yet unloaded',
      reading({ modules: ['livepatch_a'] }),
      node('n1', ['a', 'Stalled']),
    ],
  ])('agrees: %s', (_, r, s) => {
    expect(statusAgainstKernel(r, s)).toEqual([]);
  });
  test.each<[string, KernelReading, NodeSample, RegExp]>([
    [
      'Patched but not loaded',
      reading(),
      node('n1', ['a', 'Patched']),
      /status Patched but the kernel has no directory, module not loaded/,
    ],
    [
      'Unpatched but loaded',
      enabled,
      node('n1', ['a', 'Unpatched']),
      /status Unpatched but the kernel has enabled=1, module loaded/,
    ],
    ['Stalled but enabled', enabled, node('n1', ['a', 'Stalled']), /status Stalled but/],
    [
      'enabled with no entry',
      enabled,
      node('n1'),
      /livepatch_a enabled but the status has no Patched entry/,
    ],
  ])('disagrees: %s', (_, r, s, seen) => {
    expect(
      statusAgainstKernel(r, s)
        .map((v) => v.seen)
        .join('\n'),
    ).toMatch(seen);
  });
  test('endOfRun puts every check together per node', () => {
    const r = reading({
      loads: { livepatch_a: 2 },
      transition: { patch: 'livepatch_a', target: 1 },
    });
    expect(endOfRun([r], [node('n1', ['a', 'Patched'])]).map((v) => v.invariant)).toEqual([
      'no module loaded twice',
      'no node left in transition',
      'status converges to the kernel',
    ]);
  });
});

describe('maxUnavailable never exceeded', () => {
  const limits = new Map([['a', 2]]);
  test('at most the limit in flight at every sample', () => {
    const s = [
      snap(1, [
        node('n1', ['a', 'Loading']),
        node('n2', ['a', 'Transitioning']),
        node('n3', ['a', 'Patched']),
      ]),
      snap(2, [
        node('n1', ['a', 'Patched']),
        node('n2', ['a', 'Reversing']),
        node('n3', ['a', 'Unpatching']),
      ]),
    ];
    expect(maxUnavailableExceeded(s, limits)).toEqual([]);
  });
  test('one sample over the limit is reported once, with the nodes', () => {
    const over = snap(Date.UTC(2026, 0, 1, 10), [
      node('n1', ['a', 'Transitioning']),
      node('n2', ['a', 'Transitioning']),
      node('n3', ['a', 'Loading']),
    ]);
    const found = maxUnavailableExceeded([over, over], limits);
    expect(found).toHaveLength(1);
    expect(found[0]?.seen).toBe('at 10:00:00.000 3 nodes in flight (n1, n2, n3), maxUnavailable 2');
  });
  test('another LivePatch in flight on the same nodes does not count', () => {
    const s = [
      snap(1, [
        node('n1', ['a', 'Transitioning'], ['b', 'Patched']),
        node('n2', ['b', 'Transitioning']),
      ]),
    ];
    expect(
      maxUnavailableExceeded(
        s,
        new Map([
          ['a', 1],
          ['b', 1],
        ]),
      ),
    ).toEqual([]);
  });
});

describe('never two transitions on one node', () => {
  test('one at a time per node', () => {
    expect(
      twoTransitions([snap(1, [node('n1', ['a', 'Transitioning'], ['b', 'Pending'])])]),
    ).toEqual([]);
  });
  test('two at once is named', () => {
    const found = twoTransitions([snap(1, [node('n1', ['a', 'Transitioning'], ['b', 'Loading'])])]);
    expect(found[0]).toMatchObject({
      node: 'n1',
      seen: expect.stringContaining('a Transitioning, b Loading'),
    });
  });
});

describe('no count goes backwards within a generation', () => {
  test('patched grows on the way forward; a rollback turns to reverted, which grows', () => {
    const s = [
      snap(1, [], [lp('Progressing', 1, { patched: 1 })]),
      snap(2, [], [lp('Progressing', 1, { patched: 3 })]),
      snap(3, [], [lp('RollingBack', 1, { patched: 2, reverted: 1 })]),
      snap(4, [], [lp('RolledBack', 1, { patched: 0, reverted: 3 })]),
    ];
    expect(countsBackwards(s)).toEqual([]);
  });
  test('a new generation starts its own count', () => {
    const s = [
      snap(1, [], [lp('Complete', 1, { patched: 5 })]),
      snap(2, [], [lp('Disabling', 2, { patched: 4, reverted: 1 })]),
      snap(3, [], [lp('Progressing', 3, { patched: 0 })]),
    ];
    expect(countsBackwards(s)).toEqual([]);
  });
  test('patched nodes gone unknown (a silent agent) are not a fall; their return is not either', () => {
    const s = [
      snap(1, [], [lp('Complete', 1, { patched: 4, unknown: 0 })]),
      snap(2, [], [lp('Complete', 1, { patched: 2, unknown: 2 })]),
      snap(3, [], [lp('Complete', 1, { patched: 4, unknown: 0 })]),
    ];
    expect(countsBackwards(s)).toEqual([]);
  });
  test('a fall larger than the nodes gone unknown is reported', () => {
    const s = [
      snap(1, [], [lp('Complete', 1, { patched: 4, unknown: 0 })]),
      snap(2, [], [lp('Complete', 1, { patched: 1, unknown: 2 })]),
    ];
    expect(countsBackwards(s)[0]?.seen).toMatch(
      /patched 4 at .*, then 1 at .* \(Complete, unknown 0 then 2\)/,
    );
  });
  test('patched falling within a generation is reported once', () => {
    const s = [
      snap(1, [], [lp('Progressing', 1, { patched: 4 })]),
      snap(2, [], [lp('Progressing', 1, { patched: 0 })]),
      snap(3, [], [lp('Progressing', 1, { patched: 1 })]),
    ];
    const found = countsBackwards(s);
    expect(found).toHaveLength(1);
    expect(found[0]?.seen).toMatch(
      /generation 1: patched 4 at .*, then 0 at .* \(Progressing, unknown 0 then 0\)/,
    );
  });
});
