// Nodes in flight from the kernels' own timelines and the watch's Loading, on
// handmade timelines: an over-start is caught even while the nodes started
// too many are still Loading, and a rolling one-at-a-time rollout is not
// taken for one.
import { describe, expect, test } from '@jest/globals';
import type { NodePatchPhase } from '../../../src/api/generated/types.js';
import type { KernelEvent } from '../../../agent/kernel/sim/simulator.js';
import type { KernelReading, PhaseSeen } from '../../../lab/chaos/evidence.js';
import {
  flights,
  flightsExceeded,
  kernelFlights,
  landedAt,
  patchOwners,
} from '../../../lab/chaos/in-flight.js';

const P = 'livepatch_lp';
const kernel = (node: string, timeline: KernelEvent[]): KernelReading => ({
  node,
  loads: {},
  patches: [],
  modules: [],
  timeline,
});
const seen = (at: number, node: string, phase: NodePatchPhase): PhaseSeen => ({
  at,
  node,
  livePatch: 'lp',
  patchName: P,
  phase,
});
const enable = (from: number, to: number): KernelEvent[] => [
  { at: from, event: 'insmod', patch: P },
  { at: to, event: 'settled', patch: P, enabled: true },
];
const exceeded = (k: KernelReading[], s: PhaseSeen[], limit: number): string[] =>
  flightsExceeded(flights(k, s), patchOwners(s), new Map([['lp', limit]])).map((v) => v.seen);

describe("a kernel's flights", () => {
  test('from insmod or disable until the transition ended; a reversal keeps it in flight; none ended: still in flight', () => {
    expect(
      kernelFlights('n1', [
        { at: 1, event: 'insmod', patch: P },
        { at: 3, event: 'reverse', patch: P, target: 0 },
        { at: 5, event: 'settled', patch: P, enabled: false },
        { at: 6, event: 'rmmod', patch: P },
        { at: 10, event: 'insmod', patch: 'other' },
      ]),
    ).toEqual([
      { node: 'n1', patch: P, from: 1, to: 5, began: 'insmod' },
      { node: 'n1', patch: 'other', from: 10, began: 'insmod' },
    ]);
  });
});

describe('maxUnavailable by the kernels', () => {
  test('one node after another, each started after the last one ended, is within maxUnavailable 1', () => {
    const k = [kernel('n1', enable(100, 200)), kernel('n2', enable(250, 300))];
    const s = [
      seen(90, 'n1', 'Loading'),
      seen(210, 'n1', 'Patched'),
      seen(220, 'n2', 'Loading'),
      seen(310, 'n2', 'Patched'),
    ];
    expect(exceeded(k, s, 1)).toEqual([]);
    // The watch's Loading takes n2's flight back to 220, still after n1's end.
    expect(flights(k, s).find((f) => f.node === 'n2')).toMatchObject({ from: 220, to: 300 });
  });

  test("an over-start caught while the second node is still Loading, before its kernel's insmod", () => {
    // n1 transitions 100..200; n2 was started at 150 and is still Loading when the run is read.
    const k = [kernel('n1', enable(100, 200)), kernel('n2', [])];
    const s = [seen(90, 'n1', 'Loading'), seen(150, 'n2', 'Loading')];
    expect(exceeded(k, s, 1)).toEqual([
      expect.stringMatching(
        /2 nodes in flight by their kernels \(n1 since .* by insmod, n2 since .* by loading\), maxUnavailable 1/,
      ),
    ]);
  });

  test('an over-start whose statuses never showed it: the second node went Loading to Patched in one write', () => {
    const k = [kernel('n1', enable(100, 200)), kernel('n2', enable(150, 180))];
    const s = [seen(210, 'n1', 'Patched'), seen(190, 'n2', 'Patched')];
    expect(exceeded(k, s, 1)).toHaveLength(1);
    expect(exceeded(k, s, 2)).toEqual([]);
  });

  test('a Loading that ended before a later insmod (a failed load, retried) does not stretch that flight back', () => {
    const k = [kernel('n1', enable(100, 200)), kernel('n2', enable(300, 400))];
    const s = [
      seen(10, 'n2', 'Loading'),
      seen(20, 'n2', 'Failed'),
      seen(90, 'n1', 'Loading'),
      seen(290, 'n2', 'Loading'),
    ];
    expect(exceeded(k, s, 1)).toEqual([]);
  });

  test('an end and a start at the same moment do not overlap', () => {
    const k = [kernel('n1', enable(100, 200)), kernel('n2', enable(200, 300))];
    expect(exceeded(k, [seen(0, 'n1', 'Patched')], 1)).toEqual([]);
  });

  test("another LivePatch's flights do not count against this one", () => {
    const k = [
      kernel('n1', enable(100, 200)),
      kernel('n2', [{ at: 150, event: 'insmod', patch: 'livepatch_other' }]),
    ];
    const s = [
      seen(90, 'n1', 'Loading'),
      {
        at: 140,
        node: 'n2',
        livePatch: 'other',
        patchName: 'livepatch_other',
        phase: 'Loading' as const,
      },
    ];
    expect(exceeded(k, s, 1)).toEqual([]);
  });
});

describe('where a kill landed, by the kernel timeline', () => {
  const timeline: KernelEvent[] = [
    { at: 10, event: 'insmod', patch: P },
    { at: 20, event: 'reverse', patch: P, target: 0 },
    { at: 30, event: 'settled', patch: P, enabled: false },
    { at: 40, event: 'rmmod', patch: P },
  ];
  test.each([
    [5, 'load'],
    [15, 'transition'],
    [25, 'reversal'],
    [35, 'unload'],
    [45, 'settled'],
  ])('at %d: %s', (moment, landed) => {
    expect(landedAt(timeline, P, moment)).toBe(landed);
  });

  test('a disable in progress, and an enabled patch at rest', () => {
    const t: KernelEvent[] = [...enable(10, 20), { at: 30, event: 'disable', patch: P }];
    expect(landedAt(t, P, 25)).toBe('settled');
    expect(landedAt(t, P, 31)).toBe('unload');
  });
});
