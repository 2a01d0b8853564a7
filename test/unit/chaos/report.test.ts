// The fault suite's table and messages.
import { describe, expect, test } from '@jest/globals';
import {
  markdownTable,
  median,
  violationMessages,
  type FaultPoint,
  type ScenarioResult,
} from '../../../lab/chaos/report.js';
import { Random } from '../../../lab/chaos/random.js';

const result: ScenarioResult = {
  scenario: 'controller-kill',
  seed: 7,
  runs: 4,
  faults: 2,
  endStates: { reached: 4, expected: 4 },
  doubleLoads: 0,
  leftInTransition: 0,
  recovery: { what: 'take-over', seconds: [15.04, 16.5, 17.25] },
  violations: [],
  durationSeconds: 60,
};

describe('the chaos report', () => {
  test.each([
    [[], 0],
    [[3], 3],
    [[5, 1, 3], 3],
    [[4, 1, 3, 2], 2.5],
  ])('median of %j is %d', (values, expected) => {
    expect(median(values)).toBe(expected);
  });

  test('one Markdown row per scenario, figures right-aligned, kill points landed of those aimed', () => {
    const point = (intended: string, landed: string): FaultPoint => ({
      node: 'ak-0',
      patch: 'livepatch_x',
      at: '2025-01-01T00:00:00.000Z',
      intended,
      landed,
    });
    const aimed: ScenarioResult = {
      ...result,
      scenario: 'agent-kill',
      faultPoints: [point('load', 'load'), point('load', 'transition'), point('unload', 'unload')],
    };
    expect(markdownTable([result, aimed]).split('\n')).toEqual([
      '| scenario        | runs | faults | end states | double loads | left in transition | recovery median | recovery max | violations | landed as intended |',
      '| --------------- | ---: | -----: | ---------: | -----------: | -----------------: | --------------: | -----------: | ---------: | -----------------: |',
      '| controller-kill |    4 |      2 |        4/4 |            0 |                  0 |          16.5 s |       17.3 s |          0 |                  - |',
      '| agent-kill      |    4 |      2 |        4/4 |            0 |                  0 |          16.5 s |       17.3 s |          0 |                2/3 |',
    ]);
  });

  test('a violation names the scenario, the seed, where and what was seen', () => {
    expect(
      violationMessages('agent-kill', 42, [
        {
          invariant: 'no module loaded twice',
          node: 'ak-1',
          seen: 'the kernel loaded livepatch_x 2 times',
        },
        { invariant: 'maxUnavailable never exceeded', livePatch: 'lp', seen: '4 in flight' },
      ]),
    ).toEqual([
      'agent-kill (seed 42), node ak-1: no module loaded twice violated: the kernel loaded livepatch_x 2 times',
      'agent-kill (seed 42), LivePatch lp: maxUnavailable never exceeded violated: 4 in flight',
    ]);
  });
});

describe('the seeded chance', () => {
  test('one seed, one sequence; forks are their own and repeatable', () => {
    const a = new Random(99);
    const b = new Random(99);
    const seq = (r: Random): number[] => Array.from({ length: 5 }, () => r.int(0, 1000));
    expect(seq(a)).toEqual(seq(b));
    expect(seq(new Random(99).fork(1))).toEqual(seq(new Random(99).fork(1)));
    expect(seq(new Random(99).fork(1))).not.toEqual(seq(new Random(99).fork(2)));
  });
  test('int stays within its bounds, pick within its list', () => {
    const r = new Random(1);
    for (let i = 0; i < 1000; i++) {
      const n = r.int(2, 3);
      expect(n === 2 || n === 3).toBe(true);
    }
    expect(['x', 'y']).toContain(r.pick(['x', 'y']));
    expect(() => r.pick([])).toThrow('pick from an empty list');
  });
});
