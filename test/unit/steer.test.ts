// What `kubectl livepatch abort` and `retry` write, or why they refuse, from
// the LivePatch as read.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchPhase } from '../../src/api/generated/types.js';
import { pauseNote, planAbort, planRetry, type Steer } from '../../src/cli/steer.js';
import { livePatch, withMetadata } from './controller/fixtures.js';

/** A LivePatch at generation 3 whose status describes `observed` (default: generation 3). */
function at(
  phase: LivePatchPhase | undefined,
  o: { observed?: number; reason?: string } = {},
): LivePatch {
  const lp = livePatch({
    name: 'cve-1',
    generation: 3,
    ...(phase
      ? {
          status: {
            phase,
            observedGeneration: o.observed ?? 3,
            conditions: [
              {
                type: 'Progressing',
                status: 'False',
                reason: o.reason ?? phase,
                message: '',
                lastTransitionTime: '2026-01-15T12:00:00Z',
              },
            ],
          },
        }
      : {}),
  });
  return withMetadata(lp, { resourceVersion: '812' });
}

const refusal = (s: Steer): string => (s.kind === 'refuse' ? s.message : `no refusal: ${s.kind}`);

describe('abort', () => {
  test.each<[string, LivePatch, RegExp]>([
    ['RollingBack', at('RollingBack'), /already rolling back .*status cve-1 -w/],
    ['RolledBack', at('RolledBack'), /already RolledBack: no node has the patch.*retry cve-1/],
    ['Disabled', at('Disabled'), /already Disabled/],
    [
      'spec.state Disabled',
      { ...at('Disabling'), spec: { ...at('Disabling').spec, state: 'Disabled' } },
      /spec.state Disabled: the controller is already unpatching every node/,
    ],
    [
      'being deleted',
      withMetadata(at('Progressing'), { deletionTimestamp: new Date() }),
      /is being deleted/,
    ],
    [
      'already aborted',
      withMetadata(at('RollingBack'), { annotations: { 'livepatch.io/abort': 'attempt-0' } }),
      /attempt 0 of cve-1 is already aborted \(phase RollingBack\): it stays aborted until kubectl livepatch retry cve-1/,
    ],
    [
      'already aborted, then paused: the controller has not caught up with the pause',
      withMetadata(at('RollingBack', { observed: 2 }), {
        annotations: { 'livepatch.io/abort': 'attempt-0' },
      }),
      /attempt 0 of cve-1 is already aborted/,
    ],
    [
      'rolling out nothing',
      at('Failed', { reason: 'PatchNameInUse' }),
      /another LivePatch owns its patchName/,
    ],
    [
      'Complete, without --rollback-complete',
      at('Complete'),
      /Complete: every targeted node has the patch. Aborting it now unpatches every node and ends RolledBack \(reason Aborted\).*abort cve-1 --rollback-complete.*spec.state: Disabled/,
    ],
  ])('refused when %s', (_what, lp, message) => {
    expect(refusal(planAbort(lp, { rollbackComplete: false }))).toMatch(message);
  });

  test.each<[string, LivePatch]>([
    ['Pending (no status yet)', at(undefined)],
    ['Progressing', at('Progressing')],
    ['Paused', at('Paused')],
    ['Failed (halted)', at('Failed', { reason: 'Halted' })],
    [
      'Complete as of an older generation: the new one is rolling out',
      at('Complete', { observed: 2 }),
    ],
    [
      'aborted at an older generation (an older plugin)',
      withMetadata(at('Progressing'), { annotations: { 'livepatch.io/abort': '2' } }),
    ],
  ])('%s: annotates the current attempt and who asked, guarded by resourceVersion', (_w, lp) => {
    const steer = planAbort(lp, { rollbackComplete: false, by: 'alice' });
    expect(steer.kind === 'patch' && steer.patch).toEqual({
      metadata: {
        resourceVersion: '812',
        annotations: { 'livepatch.io/abort': 'attempt-0', 'livepatch.io/requested-by': 'alice' },
      },
    });
  });

  test('names the attempt of a retried LivePatch', () => {
    const lp = at('Progressing');
    const retried = { ...lp, spec: { ...lp.spec, rollout: { ...lp.spec.rollout, attempt: 2 } } };
    const steer = planAbort(retried, { rollbackComplete: false });
    expect(steer.kind === 'patch' && steer.patch).toMatchObject({
      metadata: { annotations: { 'livepatch.io/abort': 'attempt-2' } },
    });
  });

  test('a Complete rollout with --rollback-complete; nobody named clears an older requester', () => {
    const steer = planAbort(at('Complete'), { rollbackComplete: true });
    expect(steer.kind === 'patch' && steer.patch).toEqual({
      metadata: {
        resourceVersion: '812',
        annotations: { 'livepatch.io/abort': 'attempt-0', 'livepatch.io/requested-by': null },
      },
    });
  });

  test('says what it did and what to watch', () => {
    const steer = planAbort(at('Progressing'), { rollbackComplete: false });
    expect(steer.kind === 'patch' && steer.done(at('Progressing'))).toBe(
      'livepatch.livepatch.io/cve-1 aborted: livepatch.io/abort=attempt-0. The controller unpatches every node that ' +
        'has the patch, in-flight ones first, maxUnavailable at a time, and ends RolledBack with reason Aborted; ' +
        'pausing, resuming or editing it keeps it aborted.\n' +
        'Watch it: kubectl livepatch status cve-1 -w\n' +
        'Then, to roll out again: kubectl livepatch retry cve-1\n',
    );
  });
});

describe('pause and resume', () => {
  test('say that an abort holds through them, and how it ends', () => {
    const lp = withMetadata(at('RolledBack'), {
      annotations: { 'livepatch.io/abort': 'attempt-0' },
    });
    expect(pauseNote(lp)).toBe(
      'note: attempt 0 of cve-1 is aborted (livepatch.io/abort): it stays rolled back whether paused or not. ' +
        'To roll out again: kubectl livepatch retry cve-1\n',
    );
    expect(pauseNote(at('Progressing'))).toBe('');
  });
});

describe('retry', () => {
  test.each<[LivePatchPhase | undefined, RegExp]>([
    [
      undefined,
      /cve-1 is Pending: retry is for a rollout that RolledBack or Failed, or has nodes that stalled or failed; it has not started/,
    ],
    ['Progressing', /is Progressing: .*to stop it: kubectl livepatch abort cve-1/],
    ['Paused', /is Paused: .*kubectl livepatch resume cve-1/],
    [
      'Complete',
      /is Complete: retry is for a rollout that RolledBack or Failed, or has nodes that stalled or failed; no targeted node stalled or failed, nothing to retry/,
    ],
    ['RollingBack', /is RollingBack: .*wait until it is RolledBack/],
    ['Disabled', /is Disabled: .*set it to Enabled/],
  ])('refused when %s', (phase, message) => {
    expect(refusal(planRetry(at(phase)))).toMatch(message);
  });

  test('a LivePatch as the API server fills it in before the controller writes (observedGeneration 0) is Pending', () => {
    const unwritten = withMetadata(
      livePatch({ name: 'cve-1', generation: 3, status: { observedGeneration: 0 } }),
      { resourceVersion: '812' },
    );
    expect(refusal(planRetry(unwritten))).toMatch(/cve-1 is Pending: .*it has not started/);
  });

  test.each<[LivePatchPhase, 'stalled' | 'failed']>([
    ['Complete', 'failed'],
    ['Complete', 'stalled'],
    ['Progressing', 'failed'],
    ['Paused', 'stalled'],
  ])(
    '%s with a %s node (failureBudget or stall.action Ignore let it go on): a fresh attempt',
    (phase, what) => {
      const lp = at(phase);
      const status = { ...lp.status, nodes: { targeted: 4, patched: 3, [what]: 1 } };
      const steer = planRetry({ ...lp, status });
      expect(steer.kind === 'patch' && steer.patch).toMatchObject({
        spec: { rollout: { attempt: 1 } },
      });
    },
  );

  test.each<[string, LivePatch]>([
    ['Disabled', at('Disabled')],
    ['Disabling', at('Disabling')],
    ['being deleted', withMetadata(at('Complete'), { deletionTimestamp: new Date() })],
  ])('refused when %s, even with failed nodes', (_what, lp) => {
    const status = { ...lp.status, nodes: { targeted: 4, failed: 1 } };
    expect(planRetry({ ...lp, status }).kind).toBe('refuse');
  });

  test('refused while the controller has not caught up with the latest generation', () => {
    expect(refusal(planRetry(at('RolledBack', { observed: 2 })))).toMatch(
      /has not yet acted on generation 3 of cve-1 \(its status describes generation 2\): that change is already a fresh attempt/,
    );
  });

  test.each<LivePatchPhase>(['RolledBack', 'Failed'])(
    'after %s: the next attempt, the abort and promote annotations dropped, who asked',
    (phase) => {
      const lp = withMetadata(at(phase), { annotations: { 'livepatch.io/abort': 'attempt-2' } });
      const retried = { ...lp, spec: { ...lp.spec, rollout: { ...lp.spec.rollout, attempt: 2 } } };
      const steer = planRetry(retried, { by: 'bob' });
      expect(steer.kind === 'patch' && steer.patch).toEqual({
        metadata: {
          resourceVersion: '812',
          annotations: {
            'livepatch.io/abort': null,
            'livepatch.io/promote': null,
            'livepatch.io/requested-by': 'bob',
          },
        },
        spec: { rollout: { attempt: 3 } },
      });
      expect(steer.kind === 'patch' && steer.done(withMetadata(lp, { generation: 4 }))).toBe(
        `livepatch.livepatch.io/cve-1 retried: spec.rollout.attempt 3, generation 4. A fresh rollout after ${phase}: ` +
          'the steps start over, nodes that stalled or failed are tried again, patched nodes stay patched.\n' +
          'Watch it: kubectl livepatch status cve-1 -w\n',
      );
    },
  );
});
