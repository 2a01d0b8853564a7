// What the agent adds to its report for the bake, when it reads the kernel
// again, and which changes it writes at once: pure, injected time.
import { describe, expect, test } from '@jest/globals';
import {
  fitMessages,
  MESSAGE_MAX,
  nextBakeEnd,
  nextPoll,
  statusKey,
  withBake,
} from '../../../agent/pass/reporting.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';
import { desiredPatch } from '../../support/desired-patch.js';

const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);
const at = (s: number): number => T0 + s * 1000;
const iso = (s: number): string => new Date(at(s)).toISOString();
const LP = 'cve-a' as LivePatchName;
const P = 'livepatch_a' as PatchName;
const W = 1 << 9;
const K = 1 << 15;

const entry = (o: Partial<DesiredPatch> = {}): DesiredPatch =>
  desiredPatch({ bakeTime: '30s', ...o });
const report = (o: Partial<ObservedPatch> = {}): ObservedPatch => ({
  livePatch: LP,
  patchName: P,
  phase: 'Patched',
  observedGeneration: 1,
  ...o,
});

describe('the bake in the agent’s report', () => {
  const inputs = (now: number, previous: ObservedPatch[], tainted = K) => ({
    desired: [entry()],
    previous,
    taintAtLoad: new Map<string, number>([[LP, 0]]),
    tainted,
    now,
  });

  test('a patch that just became Patched gets its time and the taint from before its load', () => {
    const [p] = withBake([report()], inputs(at(10), [report({ phase: 'Transitioning' })]));
    expect(p).toMatchObject({ patchedTime: iso(10), taintBeforeLoad: 0 });
    expect(p?.taintAfterBake).toBeUndefined();
  });

  test('it keeps its time while it stays Patched, and once bakeTime has passed reports the taint then', () => {
    const first = withBake([report()], inputs(at(10), []));
    const during = withBake([report()], inputs(at(39), first));
    expect(during[0]?.taintAfterBake).toBeUndefined();
    const over = withBake([report()], inputs(at(40), during, K | W));
    expect(over[0]).toMatchObject({ patchedTime: iso(10), taintAfterBake: K | W });
    // Set once: a later taint is not the bake's.
    const later = withBake([report()], inputs(at(90), over, K | W | 1));
    expect(later[0]?.taintAfterBake).toBe(K | W);
  });

  test('without a bakeTime the bake is over as soon as the patch is Patched', () => {
    const [p] = withBake([report()], {
      ...inputs(at(10), []),
      desired: [entry({ bakeTime: '0s' })],
    });
    expect(p?.taintAfterBake).toBe(K);
  });

  test('a patch that leaves Patched and comes back (a reload) bakes again', () => {
    const baked = report({ patchedTime: iso(10), taintAfterBake: K });
    const again = withBake([report()], inputs(at(100), [report({ phase: 'Transitioning' })]));
    expect(again[0]).toMatchObject({ patchedTime: iso(100) });
    expect(again[0]?.taintAfterBake).toBeUndefined();
    expect(withBake([report()], inputs(at(100), [baked]))[0]?.patchedTime).toBe(iso(10));
  });

  test('the agent wakes when a bake ends, to report it', () => {
    const baking = [report({ patchedTime: iso(10) })];
    expect(nextBakeEnd(baking, [entry()], at(15))).toBe(25_000);
    expect(
      nextBakeEnd([report({ patchedTime: iso(10), taintAfterBake: 0 })], [entry()], at(15)),
    ).toBe(undefined);
  });
});

describe('reading the kernel during a transition', () => {
  const running = [
    report({ phase: 'Transitioning', transition: true, transitionStartTime: iso(0) }),
  ];

  test('just after each of the kernel’s once-a-second retries, counted from the start', () => {
    expect(nextPoll(running, [entry()], 1000, at(0) + 30)).toBe(990);
    expect(nextPoll(running, [entry()], 1000, at(3) + 25)).toBe(995);
  });

  test('and just past the stall deadline, so the node guard reverses on time', () => {
    const desired = [entry({ stallTimeout: '2500ms' })];
    expect(nextPoll(running, desired, 1000, at(2) + 30)).toBe(471);
  });

  test('without a transition start, every pollMs', () => {
    expect(nextPoll([report()], [entry()], 1000, at(5))).toBe(1000);
  });
});

describe('which status changes are written at once', () => {
  test('a phase change is; a task count or message alone is not', () => {
    const base = { patches: [report({ phase: 'Transitioning', pendingTasks: 40, message: 'a' })] };
    const progress = {
      patches: [report({ phase: 'Transitioning', pendingTasks: 3, message: 'b' })],
    };
    const done = { patches: [report({ phase: 'Patched' })] };
    expect(statusKey(progress)).toBe(statusKey(base));
    expect(statusKey(done)).not.toBe(statusKey(base));
    expect(statusKey({ ...base, kernelTainted: W })).not.toBe(statusKey(base));
  });

  test('a patch that starts Loading is not; the transition it leads to is', () => {
    const before = { patches: [report({ livePatch: 'other' as LivePatchName, phase: 'Patched' })] };
    const loading = { patches: [...before.patches, report({ phase: 'Loading' })] };
    const transitioning = {
      patches: [...before.patches, report({ phase: 'Transitioning', transition: true })],
    };
    expect(statusKey(loading)).toBe(statusKey(before));
    expect(statusKey(transitioning)).not.toBe(statusKey(loading));
  });
});

describe('a status the API server takes', () => {
  test('a message longer than the CRD allows is cut, so the node still reports', () => {
    const long = report({ phase: 'Failed', message: `insmod: ${'kernel: x '.repeat(600)}` });
    const [fitted] = fitMessages([long, report()]);
    expect(fitted?.message?.length).toBe(MESSAGE_MAX);
    expect(fitted?.message?.startsWith('insmod: kernel: x')).toBe(true);
    expect(fitMessages([report({ message: 'short' })])[0]?.message).toBe('short');
  });
});
