// `kubectl livepatch promote` as the controller reads it: the annotation
// names the attempt and the one visit of one pause step it ends (or, --full,
// every remaining step), so a stale or repeated promotion does nothing; the
// record in status and the one Promoted Event. Pure: time is injected.
import { describe, expect, test } from '@jest/globals';
import { STEERING_ANNOTATIONS } from '../../../src/api/constants.js';
import type { LivePatch } from '../../../src/api/generated/types.js';
import {
  promoteAnnotation,
  promoteFullValue,
  promoteStepValue,
  type PromoteAnnotation,
} from '../../../src/api/steering.js';
import { at, edit, Fleet, livePatch, reconcile, simulate, T0, withMetadata } from './fixtures.js';
import type { Pass } from './fixtures.js';

const PROMOTE = STEERING_ANNOTATIONS.promote;
const SINCE = '2026-01-15T12:00:02.000Z';

const annotated = (lp: LivePatch, annotations: Record<string, string>): LivePatch =>
  withMetadata(lp, { annotations: { ...lp.metadata.annotations, ...annotations } });

/** What `kubectl livepatch promote` writes for the pause step the status says it holds at. */
function promoted(lp: LivePatch, by = 'alice'): LivePatch {
  const s = lp.status;
  if (s?.currentStep === undefined || !s.currentStepStartTime) throw new Error('no step in status');
  return annotated(lp, {
    [PROMOTE]: promoteStepValue(lp, s.currentStep, s.currentStepStartTime),
    [STEERING_ANNOTATIONS.requestedBy]: by,
  });
}

const promotedFull = (lp: LivePatch, by = 'alice'): LivePatch =>
  annotated(lp, { [PROMOTE]: promoteFullValue(lp), [STEERING_ANNOTATIONS.requestedBy]: by });

/** Two pause steps around growing ones: the first canary, a pause, two more, a pause, 80%. */
const STEPS = [{ nodes: 1 }, { pause: {} }, { nodes: 3 }, { pause: {} }, { percent: 80 }];

/** Reconciles, letting every started node settle, until `done` holds (at most 60 passes). */
function runUntil(
  lp: LivePatch,
  fleet: Fleet,
  now: number,
  done: (p: Pass) => boolean,
): { pass: Pass; now: number; passes: Pass[] } {
  const passes: Pass[] = [];
  for (let i = 0; i < 60; i++, now += 1000) {
    const pass = reconcile(lp, fleet, now);
    passes.push(pass);
    if (done(pass)) return { pass, now: now + 1000, passes };
    lp = pass.lp;
    fleet.settle(now);
  }
  throw new Error(
    `not reached; last phase ${lp.status?.phase ?? ''} at step ${lp.status?.currentStep ?? ''}`,
  );
}

/** `count` passes a second apart, every started node settling. */
function runFor(lp: LivePatch, fleet: Fleet, now: number, count: number) {
  const passes: Pass[] = [];
  for (let i = 0; i < count; i++, now += 1000) {
    passes.push(reconcile(passes.at(-1)?.lp ?? lp, fleet, now));
    fleet.settle(now);
  }
  const last = passes.at(-1);
  if (!last) throw new Error('no pass');
  return { pass: last, passes, now };
}

const heldAt = (index: number) => (p: Pass) =>
  p.plan.reason === 'PauseStep' && p.status.currentStep === index;

/** A rollout of 10 nodes held at the first pause (step 2, index 1) with one node patched. */
function heldAtFirstPause(steps: unknown[] = STEPS) {
  const fleet = Fleet.of(10, T0);
  const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, steps: steps as never } } });
  const { pass, now } = runUntil(lp, fleet, T0, heldAt(1));
  return { fleet, lp: pass.lp, now };
}

const promotedEvents = (passes: readonly Pass[]) =>
  passes.flatMap((p) => p.events).filter((e) => e.reason === 'Promoted');

describe('the promote annotation', () => {
  const lp = (attempt: number, value?: string, by?: string): LivePatch =>
    annotated(livePatch({ spec: { rollout: { attempt } } }), {
      ...(value !== undefined ? { [PROMOTE]: value } : {}),
      ...(by ? { [STEERING_ANNOTATIONS.requestedBy]: by } : {}),
    });
  test.each<[string, LivePatch, PromoteAnnotation]>([
    ['absent', lp(2), { kind: 'none' }],
    [
      'a step of the current attempt, and who asked',
      lp(2, `attempt-2/step-4@${SINCE}`, 'alice'),
      {
        kind: 'step',
        step: 4,
        since: Date.parse(SINCE),
        value: `attempt-2/step-4@${SINCE}`,
        by: 'alice',
      },
    ],
    [
      'every step of the current attempt',
      lp(2, 'attempt-2/full'),
      { kind: 'full', value: 'attempt-2/full' },
    ],
    [
      'an earlier attempt',
      lp(2, `attempt-1/step-2@${SINCE}`),
      { kind: 'stale', names: 'attempt 1', current: 'attempt 2' },
    ],
    [
      'full, of an earlier attempt',
      lp(1, 'attempt-0/full'),
      { kind: 'stale', names: 'attempt 0', current: 'attempt 1' },
    ],
    [
      'a step without the time it began',
      lp(0, 'attempt-0/step-2'),
      { kind: 'invalid', value: 'attempt-0/step-2' },
    ],
    [
      'step 0 (steps count from 1)',
      lp(0, `attempt-0/step-0@${SINCE}`),
      { kind: 'invalid', value: `attempt-0/step-0@${SINCE}` },
    ],
    [
      'not a time',
      lp(0, 'attempt-0/step-2@2026-13-45T99:00:00Z'),
      { kind: 'invalid', value: 'attempt-0/step-2@2026-13-45T99:00:00Z' },
    ],
    ['yes', lp(0, 'yes'), { kind: 'invalid', value: 'yes' }],
  ])('%s', (_what, x, expected) => {
    expect(promoteAnnotation(x)).toEqual(expected);
  });

  test('what the plugin writes names the attempt, the step counted from 1, and when the step began', () => {
    const x = livePatch({ spec: { rollout: { attempt: 3 } } });
    expect(promoteStepValue(x, 1, SINCE)).toBe(`attempt-3/step-2@${SINCE}`);
    expect(promoteFullValue(x)).toBe('attempt-3/full');
  });
});

describe('promoting a pause step', () => {
  test('ends the pause held at, and the next pause holds again: one write, one Event, who and when in status', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    expect(lp.status?.conditions?.find((c) => c.type === 'Progressing')?.message).toContain(
      `kubectl livepatch promote ${lp.metadata.name ?? ''}`,
    );
    const { pass, passes } = runUntil(promoted(lp), fleet, now, heldAt(3));
    expect(pass.status).toMatchObject({ phase: 'Paused', summary: '3/10', currentStep: 3 });
    const events = promotedEvents(passes);
    expect(events).toEqual([
      {
        type: 'Normal',
        reason: 'Promoted',
        message:
          'pause step 2 of attempt 0 promoted by alice: it holds the rollout no longer; the next steps apply as written',
      },
    ]);
    expect(pass.status.promotion).toEqual({
      attempt: 0,
      step: 2,
      requestedBy: 'alice',
      time: new Date(now).toISOString(),
    });
    // Held at step 4 for an hour more: the promotion of step 2, still on the object, passes nothing else.
    const later = runFor(pass.lp, fleet, now + 3_600_000, 10);
    expect(later.pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    expect(promotedEvents(later.passes)).toEqual([]);
  }, 10_000);

  test('a timed pause is cut short', () => {
    const { fleet, lp, now } = heldAtFirstPause([{ nodes: 1 }, { pause: { duration: '1h' } }]);
    const pass = reconcile(promoted(lp), fleet, now);
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(pass.plan.promoted).toEqual({ kind: 'step', attempt: 0, step: 2, by: 'alice' });
  });

  test('a pause step that ended by itself is not credited to a promotion', () => {
    const { fleet, lp, now } = heldAtFirstPause([{ nodes: 1 }, { pause: { duration: '10s' } }]);
    const pass = reconcile(promoted(lp), fleet, now + 60_000);
    expect(pass.plan.phase).toBe('Progressing');
    expect(pass.plan.promoted).toBeUndefined();
  });

  test('a promotion of an earlier attempt, or of a step not held, does nothing', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    const s = lp.status;
    const stale = annotated(lp, {
      [PROMOTE]: `attempt-0/step-2@${s?.currentStepStartTime ?? ''}`,
    });
    const retried = {
      ...stale,
      spec: { ...stale.spec, rollout: { ...stale.spec.rollout, attempt: 1 } },
    };
    // The same object, the attempt moved on (as retry's new generation would, had the status caught up).
    const sameGeneration = withMetadata(retried, {});
    expect(reconcile(sameGeneration, fleet, now).plan).toMatchObject({
      phase: 'Paused',
      reason: 'PauseStep',
    });
    const ahead = annotated(lp, { [PROMOTE]: `attempt-0/step-4@${s?.currentStepStartTime ?? ''}` });
    expect(reconcile(ahead, fleet, now).plan).toMatchObject({
      phase: 'Paused',
      reason: 'PauseStep',
    });
    const otherVisit = annotated(lp, { [PROMOTE]: `attempt-0/step-2@${SINCE}` });
    expect(reconcile(otherVisit, fleet, now).plan).toMatchObject({
      phase: 'Paused',
      reason: 'PauseStep',
    });
  });

  test('spec.rollout.paused still holds a promoted rollout; resuming goes on past the promoted pause', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    let pass = reconcile(promoted(edit(lp, { rollout: { paused: true } })), fleet, now);
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'Paused', started: [] });
    pass = reconcile(edit(pass.lp, { rollout: { paused: false } }), fleet, now + 1000);
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
  });
});

describe('promotion across generations and controllers', () => {
  test('an edit between the promote and the controller acting on it: the promotion still ends the pause', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    const pass = reconcile(edit(promoted(lp), { cves: ['CVE-2024-1086'] }), fleet, now);
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(pass.events.map((e) => e.reason)).toContain('Promoted');
  });

  test('an edit after it keeps the promoted pause passed, without a second Event', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    // Nodes of step 3 still in flight when the edit comes: the steps are walked anew.
    const first = reconcile(promoted(lp), fleet, now);
    const edited = edit(first.lp, { cves: ['CVE-2024-1086'] });
    const { passes } = runUntil(edited, fleet, now + 1000, heldAt(3));
    expect(
      passes.filter((p) => p.plan.reason === 'PauseStep').map((p) => p.status.currentStep),
    ).toEqual([3]);
    expect(promotedEvents(passes)).toEqual([]);
  });

  test('a controller that takes over reads the promotion from the object alone', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    // A fresh planner has nothing but the stored LivePatch: a round trip through JSON.
    const stored = JSON.parse(JSON.stringify(promoted(lp))) as LivePatch;
    expect(reconcile(stored, fleet, now).plan.promoted).toMatchObject({ kind: 'step', step: 2 });
  });

  test('when the steps start over in the same attempt (Disabled, then Enabled), the old promotion does not end the pause again', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    let t = now;
    const past = runUntil(promoted(lp), fleet, t, heldAt(3));
    const disabled = simulate(edit(past.pass.lp, { state: 'Disabled' }), fleet, { now: past.now });
    expect(disabled.lp.status?.phase).toBe('Disabled');
    t = disabled.now + 1000;
    const again = runUntil(edit(disabled.lp, { state: 'Enabled' }), fleet, t, heldAt(1));
    expect(again.pass.lp.metadata.annotations?.[PROMOTE]).toBeDefined();
    const held = runFor(again.pass.lp, fleet, again.now, 10);
    expect(held.pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    // A promote of this visit of the pause ends it.
    const next = reconcile(promoted(held.pass.lp, 'bob'), fleet, held.now);
    expect(next.plan.promoted).toEqual({ kind: 'step', attempt: 0, step: 2, by: 'bob' });
  });
});

describe('promote --full', () => {
  test('skips every remaining step: the rollout goes on to every node within maxUnavailable, announced once', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    const sim = simulate(promotedFull(lp), fleet, { now });
    expect(sim.lp.status).toMatchObject({
      phase: 'Complete',
      summary: '10/10',
      currentStep: STEPS.length,
    });
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    expect(promotedEvents(sim.passes)).toEqual([
      {
        type: 'Normal',
        reason: 'Promoted',
        message:
          'attempt 0 promoted in full by alice: every remaining step skipped, the rollout goes on to every targeted node, at most 2 at a time',
      },
    ]);
    expect(sim.lp.status?.promotion).toMatchObject({
      attempt: 0,
      full: true,
      requestedBy: 'alice',
    });
    expect(sim.lp.status?.promotion?.step).toBeUndefined();
  });

  test('given before the rollout starts, no step applies', () => {
    const fleet = Fleet.of(10, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 3, steps: STEPS } } });
    const sim = simulate(promotedFull(lp), fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '10/10' });
    expect(sim.passes.map((p) => p.plan.reason)).not.toContain('PauseStep');
    expect(sim.maxInFlight).toBeLessThanOrEqual(3);
  });

  test('edits keep it, announced once; a new attempt leaves it behind and the steps apply again', () => {
    const { fleet, lp, now } = heldAtFirstPause();
    const first = reconcile(promotedFull(lp), fleet, now);
    expect(first.plan.promoted).toMatchObject({ kind: 'full' });
    const edited = reconcile(edit(first.lp, { cves: ['CVE-2024-1086'] }), fleet, now + 1000);
    expect(edited.plan.promoted).toBeUndefined();
    expect(edited.events.map((e) => e.reason)).not.toContain('Promoted');
    expect(edited.status.currentStep).toBe(STEPS.length);
    const fresh = Fleet.of(10, T0);
    const nextAttempt = edit(
      promotedFull(livePatch({ spec: { rollout: { maxUnavailable: 2, steps: STEPS } } })),
      {
        rollout: { attempt: 1 },
      },
    );
    const held = runUntil(nextAttempt, fresh, at(0), heldAt(1));
    expect(held.pass.plan.promoted).toBeUndefined();
  });
});
