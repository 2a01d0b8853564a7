// What `kubectl livepatch promote` writes, or why it refuses, from the
// LivePatch as read; and what `kubectl livepatch status` says about the steps.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchStatus } from '../../src/api/generated/types.js';
import { renderStatus } from '../../src/cli/plugin-views.js';
import { planPromote } from '../../src/cli/promote.js';
import type { Steer } from '../../src/cli/steer.js';
import { livePatch, withMetadata } from './controller/fixtures.js';

const SINCE = '2026-01-15T12:00:02.000Z';
const STEPS = [{ nodes: 1 }, { pause: {} }, { nodes: 3 }, { pause: { duration: '1h' } }];

/** A LivePatch at generation 3, its status (of generation 3) at step `step`. */
function at(status: Partial<LivePatchStatus>, o: { paused?: boolean; attempt?: number } = {}) {
  const lp = livePatch({
    name: 'cve-1',
    generation: 3,
    spec: { rollout: { steps: STEPS, paused: o.paused ?? false, attempt: o.attempt ?? 0 } },
    status: { observedGeneration: 3, currentStepStartTime: SINCE, ...status },
  });
  return withMetadata(lp, { resourceVersion: '812' });
}

const refusal = (s: Steer): string => (s.kind === 'refuse' ? s.message : `no refusal: ${s.kind}`);

describe('promote', () => {
  test('held at a pause: one annotation naming the attempt, the step and its start, and who asked', () => {
    const lp = at({ phase: 'Paused', currentStep: 1 }, { attempt: 2 });
    const steer = planPromote(lp, { full: false, by: 'alice' });
    expect(steer.kind === 'patch' && steer.patch).toEqual({
      metadata: {
        resourceVersion: '812',
        annotations: {
          'livepatch.io/promote': `attempt-2/step-2@${SINCE}`,
          'livepatch.io/requested-by': 'alice',
        },
      },
    });
    expect(steer.kind === 'patch' && steer.done(lp)).toBe(
      `livepatch.livepatch.io/cve-1 promoted: livepatch.io/promote=attempt-2/step-2@${SINCE}. The controller ` +
        'ends pause step 2 (that one only) and goes on with step 3 (nodes 3); a later pause step holds again.\n' +
        'Watch it: kubectl livepatch status cve-1 -w\n',
    );
  });

  test('a timed pause may be cut short; the last step goes on to every node', () => {
    const lp = livePatch({
      name: 'cve-1',
      spec: { rollout: { steps: [{ nodes: 1 }, { pause: { duration: '1h' } }] } },
      status: {
        observedGeneration: 1,
        phase: 'Paused',
        currentStep: 1,
        currentStepStartTime: SINCE,
      },
    });
    const steer = planPromote(lp, { full: false });
    expect(steer.kind === 'patch' && steer.done(lp)).toContain(
      'ends pause step 2 (that one only) and goes on to every targeted node, at most maxUnavailable at a time',
    );
  });

  test('held by spec.rollout.paused at a pause step: promoted, with a note that the pause still holds', () => {
    const lp = at({ phase: 'Paused', currentStep: 1 }, { paused: true });
    const steer = planPromote(lp, { full: false });
    expect(steer.kind === 'patch' && steer.done(lp)).toContain(
      'note: spec.rollout.paused is true: no node starts until kubectl livepatch resume cve-1\n',
    );
  });

  test.each<[string, LivePatch, RegExp]>([
    [
      'growing at a nodes step',
      at({ phase: 'Progressing', currentStep: 2 }),
      /cve-1 is not held at a pause step \(phase Progressing, at step 3 of 4 \(nodes 3\)\): nothing to promote. To skip every remaining step: kubectl livepatch promote cve-1 --full/,
    ],
    [
      'paused by spec.rollout.paused at a nodes step',
      at({ phase: 'Paused', currentStep: 0 }, { paused: true }),
      /not held at a pause step \(phase Paused, at step 1 of 4 \(nodes 1\)\)/,
    ],
    [
      'past the last step',
      at({ phase: 'Progressing', currentStep: 4 }),
      /not held at a pause step \(phase Progressing, past its last step\): nothing to promote.$/,
    ],
    [
      'already promoted, the controller not there yet',
      withMetadata(at({ phase: 'Paused', currentStep: 1 }), {
        annotations: { 'livepatch.io/promote': `attempt-0/step-2@${SINCE}` },
      }),
      /pause step 2 of cve-1 is already promoted \(livepatch.io\/promote=attempt-0\/step-2@.*\): the controller ends it on its next pass/,
    ],
    [
      'Complete',
      at({ phase: 'Complete', currentStep: 4 }),
      /Complete: every targeted node has the patch/,
    ],
    ['RolledBack', at({ phase: 'RolledBack' }), /RolledBack: nothing to promote. .*retry cve-1/],
    ['Failed', at({ phase: 'Failed', currentStep: 2 }), /Failed: its stall policy halted it/],
    [
      'aborted',
      withMetadata(at({ phase: 'RollingBack' }), {
        annotations: { 'livepatch.io/abort': 'attempt-0' },
      }),
      /attempt 0 of cve-1 is aborted: nothing to promote/,
    ],
    [
      'the controller behind',
      at({ phase: 'Paused', currentStep: 1, observedGeneration: 2 }),
      /has not yet acted on generation 3 of cve-1 .* try again in a moment/,
    ],
    [
      'being deleted',
      withMetadata(at({ phase: 'Paused', currentStep: 1 }), { deletionTimestamp: new Date() }),
      /being deleted/,
    ],
  ])('refused: %s', (_what, lp, message) => {
    expect(refusal(planPromote(lp, { full: false }))).toMatch(message);
  });
});

describe('promote --full', () => {
  test('held or growing: the attempt alone', () => {
    for (const status of [
      { phase: 'Paused', currentStep: 1 },
      { phase: 'Progressing', currentStep: 2 },
    ] as const) {
      const lp = at(status, { attempt: 1 });
      const steer = planPromote(lp, { full: true, by: 'bob' });
      expect(steer.kind === 'patch' && steer.patch).toEqual({
        metadata: {
          resourceVersion: '812',
          annotations: {
            'livepatch.io/promote': 'attempt-1/full',
            'livepatch.io/requested-by': 'bob',
          },
        },
      });
      expect(steer.kind === 'patch' && steer.done(lp)).toContain(
        'skips every remaining step of attempt 1, pauses included, and rolls out to every targeted node',
      );
    }
  });

  test('before the controller first acted: no step applies', () => {
    const lp = livePatch({ name: 'cve-1', spec: { rollout: { steps: STEPS } } });
    expect(planPromote(lp, { full: true }).kind).toBe('patch');
  });

  test.each<[string, LivePatch, RegExp]>([
    [
      'no step left',
      at({ phase: 'Progressing', currentStep: 4 }),
      /cve-1 has no step left: it already rolls out to every targeted node/,
    ],
    [
      'already promoted in full',
      withMetadata(at({ phase: 'Progressing', currentStep: 4 }), {
        annotations: { 'livepatch.io/promote': 'attempt-0/full' },
      }),
      /already promoted in full \(livepatch.io\/promote=attempt-0\/full\)/,
    ],
    ['Complete', at({ phase: 'Complete', currentStep: 4 }), /Complete/],
  ])('refused: %s', (_what, lp, message) => {
    expect(refusal(planPromote(lp, { full: true }))).toMatch(message);
  });
});

describe('status page', () => {
  const lines = (lp: LivePatch): string[] => renderStatus(lp, []).split('\n');

  test('held at a pause: the step, since when, and how to promote it', () => {
    expect(lines(at({ phase: 'Paused', currentStep: 3 }))).toContain(
      `  step: 4 of 4 (pause 1h), held since ${SINCE}. To end it: kubectl livepatch promote cve-1; ` +
        'to skip every remaining step: kubectl livepatch promote cve-1 --full',
    );
  });

  test('growing: the step; then the promotion recorded, who and when', () => {
    const lp = at({
      phase: 'Progressing',
      currentStep: 2,
      promotion: { attempt: 0, step: 2, requestedBy: 'alice', time: SINCE },
    });
    expect(lines(lp)).toEqual(
      expect.arrayContaining([
        '  step: 3 of 4 (nodes 3)',
        `  promoted: pause step 2 ended by alice at ${SINCE}`,
      ]),
    );
  });

  test('a promote annotation that does nothing says so', () => {
    const stale = withMetadata(at({ phase: 'Paused', currentStep: 1 }, { attempt: 1 }), {
      annotations: { 'livepatch.io/promote': 'attempt-0/full' },
    });
    expect(lines(stale)).toContain(
      '  note: livepatch.io/promote names attempt 0, not the current attempt 1: it does nothing',
    );
  });
});
