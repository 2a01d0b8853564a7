// npm run chaos's command line: what it accepts, and what it says about the rest.
import { describe, expect, test } from '@jest/globals';
import { ChaosUsageError, parseChaosArgs } from '../../../lab/chaos/args.js';

const KNOWN = ['controller-kill', 'agent-kill'];

describe('npm run chaos arguments', () => {
  test('nothing: every scenario, a fresh seed, full size', () => {
    expect(parseChaosArgs([], {}, KNOWN)).toEqual({ scenarios: KNOWN, named: false, slice: false });
  });

  test('--seed replays, --scenario picks (repeatable), --slice shrinks', () => {
    expect(
      parseChaosArgs(['--seed', '42', '--scenario', 'agent-kill', '--slice'], {}, KNOWN),
    ).toEqual({ seed: 42, scenarios: ['agent-kill'], named: true, slice: true });
    expect(
      parseChaosArgs(['--scenario=agent-kill', '--scenario=controller-kill'], {}, KNOWN).scenarios,
    ).toEqual(['agent-kill', 'controller-kill']);
  });

  test('CHAOS_SEED replays too; --seed wins over it', () => {
    expect(parseChaosArgs([], { CHAOS_SEED: '7' }, KNOWN).seed).toBe(7);
    expect(parseChaosArgs(['--seed=8'], { CHAOS_SEED: '7' }, KNOWN).seed).toBe(8);
  });

  test.each<[string, string[], Record<string, string>, RegExp]>([
    [
      'a seed that is not a number',
      ['--seed', 'abc'],
      {},
      /--seed takes a whole number of 0 or more, not "abc"/,
    ],
    ['a negative seed', ['--seed=-3'], {}, /not "-3"/],
    ['a fractional seed', ['--seed', '1.5'], {}, /not "1\.5"/],
    ['an empty seed', ['--seed='], {}, /not ""/],
    ['a bad CHAOS_SEED', [], { CHAOS_SEED: 'x1' }, /CHAOS_SEED takes a whole number/],
    [
      'an unknown scenario',
      ['--scenario', 'etcd'],
      {},
      /unknown scenario etcd; the scenarios are controller-kill, agent-kill/,
    ],
    [
      'an unknown flag',
      ['--seeds', '1'],
      {},
      /Unknown option '--seeds'[\s\S]*usage: npm run chaos/,
    ],
    ['a flag without its value', ['--scenario'], {}, /argument missing[\s\S]*usage/],
  ])('%s is a usage error that says so', (_, argv, env, message) => {
    expect(() => parseChaosArgs(argv, env, KNOWN)).toThrow(ChaosUsageError);
    expect(() => parseChaosArgs(argv, env, KNOWN)).toThrow(message);
  });
});
