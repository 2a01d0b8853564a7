// When the controller writes a LivePatch's status.
import { describe, expect, test } from '@jest/globals';
import type { LivePatchStatus } from '../../../src/api/generated/types.js';
import { STATUS_INTERVAL_MS, statusWrite } from '../../../src/controller/status-write.js';

const status = (o: Partial<LivePatchStatus> = {}): LivePatchStatus => ({
  observedGeneration: 2,
  phase: 'Disabling',
  nodes: { targeted: 12, patched: 1, reverted: 11 },
  ...o,
});
const at = { now: 10_000, lastWrittenAt: 0, releasingFinalizer: false };

describe('when the status is written', () => {
  test('nothing changed: no write', () => {
    expect(statusWrite(status(), status(), at)).toEqual({ kind: 'none', why: 'unchanged' });
  });

  test('a new phase is written at once, even right after the last write', () => {
    const next = status({ phase: 'Disabled' });
    expect(statusWrite(status(), next, { ...at, lastWrittenAt: at.now })).toEqual({ kind: 'now' });
  });

  test('counts alone wait out the interval since the last write', () => {
    const next = status({ nodes: { targeted: 12, patched: 0, reverted: 12 } });
    expect(statusWrite(status(), next, { ...at, lastWrittenAt: at.now - 400 })).toEqual({
      kind: 'later',
      inMs: STATUS_INTERVAL_MS - 400,
    });
    expect(
      statusWrite(status(), next, { ...at, lastWrittenAt: at.now - STATUS_INTERVAL_MS }),
    ).toEqual({
      kind: 'now',
    });
  });

  test('the pass that releases the finalizer keeps the record of the unpatching', () => {
    // A leader killed after removing some entries: the next one counts only the nodes left.
    const fromWhatIsLeft = status({ phase: 'Disabled', nodes: { targeted: 12, reverted: 0 } });
    expect(statusWrite(status(), fromWhatIsLeft, { ...at, releasingFinalizer: true })).toEqual({
      kind: 'none',
      why: 'the LivePatch is going',
    });
  });
});
