// The simulator knob for a module that taints the node on load, and the one
// table of the kernel's taint flags both sides read.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knobsFromAnnotations } from '../../../agent/kernel/sim/sim-knobs.js';
import { writeSimModuleFile } from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';
import { SIM_ANNOTATIONS } from '../../../src/api/constants.js';
import { kernelRelease } from '../../../src/api/names.js';
import {
  newDamage,
  parseTaint,
  TAINT_LETTERS,
  TAINT_LIVEPATCH,
  TAINT_OOT_MODULE,
  TAINT_UNSIGNED_MODULE,
  taintLetters,
} from '../../../src/api/taint.js';
import { ManualClock } from '../../../src/clock.js';

const RELEASE = kernelRelease('6.1.0-26-amd64');

describe('taint flags', () => {
  test('the letters are in the kernel order: bit 0 is P, 9 is W, 15 is K, 18 is N', () => {
    expect(TAINT_LETTERS).toHaveLength(19);
    expect(taintLetters(1)).toBe('P');
    expect(taintLetters(1 << 9)).toBe('W');
    expect(taintLetters(1 << 15)).toBe('K');
    expect(taintLetters(1 << 18)).toBe('N');
    expect(taintLetters(0)).toBe('');
  });

  test('the named bits are the kernel ones: O is 12, E is 13, K is 15', () => {
    expect(TAINT_OOT_MODULE).toBe(1 << 12);
    expect(TAINT_UNSIGNED_MODULE).toBe(1 << 13);
    expect(TAINT_LIVEPATCH).toBe(1 << 15);
  });

  test.each([
    ['W', 1 << 9],
    ['D,W', (1 << 7) | (1 << 9)],
    ['oek', (1 << 12) | (1 << 13) | (1 << 15)],
    ['', 0],
    ['WZ', undefined],
  ])('%j parses to %p', (letters, bits) => {
    expect(parseTaint(letters)).toBe(bits);
  });

  test('damage is M, B, D, W or L that was not there before; O, E and K are not damage', () => {
    const bits = (s: string): number => parseTaint(s) ?? -1;
    expect(taintLetters(newDamage(bits('OE'), bits('OEKW')))).toBe('W');
    expect(newDamage(bits('W'), bits('WK'))).toBe(0);
    expect(newDamage(0, bits('OEK'))).toBe(0);
    expect(taintLetters(newDamage(0, bits('MBDWL')))).toBe('MBDWL');
  });
});

describe('sim.livepatch.io/load-taint', () => {
  test('a module loaded on an aimed node adds the taint flags to the kernel, besides K', async () => {
    const { knobs, problems } = knobsFromAnnotations({ [SIM_ANNOTATIONS.loadTaint]: 'D,W' });
    expect(problems).toEqual([]);
    const kernel = new SimulatedKernel({
      release: RELEASE,
      clock: new ManualClock(),
      knobs: () => knobs,
    });
    const dir = await mkdtemp(join(tmpdir(), 'load-taint-'));
    const module = await writeSimModuleFile(dir, { name: 'livepatch_a', kernel: RELEASE });
    expect(taintLetters(await kernel.tainted())).toBe('');
    await kernel.load(module.path);
    // O and E: like any out-of-tree, unsigned module.
    expect(taintLetters(await kernel.tainted())).toBe('DWOEK');
  });

  test('letters that are not taint flags are a problem, and no taint is added', () => {
    const { knobs, problems } = knobsFromAnnotations({ [SIM_ANNOTATIONS.loadTaint]: 'bogus' });
    expect(knobs.loadTaint).toBeUndefined();
    expect(problems[0]).toContain('sim.livepatch.io/load-taint="bogus"');
  });
});
