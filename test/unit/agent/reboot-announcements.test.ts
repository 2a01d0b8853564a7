// The Events a rebooted node writes on its LivePatch (announcements.ts):
// one when it loads its patch again, one when it is Patched again, none on
// the passes between or after.
import { describe, expect, test } from '@jest/globals';
import { rebootAnnouncements } from '../../../agent/pass/announcements.js';
import type { ObservedPatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';

const entry = (phase: ObservedPatch['phase'], message?: string): ObservedPatch => ({
  livePatch: 'cve-a' as LivePatchName,
  patchName: 'livepatch_a' as PatchName,
  phase,
  observedGeneration: 1,
  ...(message ? { message } : {}),
});
const LOADING = entry('Loading', 'the node rebooted without the patch: loading it again; fetching');
const PATCHED = entry(
  'Patched',
  'the node rebooted without the patch: re-patched; enabled, transition complete',
);

describe('a rebooted node announces', () => {
  test('NodeRebooted once when it starts loading its patch again', () => {
    const said = rebootAnnouncements([entry('Patched', 'enabled; transition complete')], [LOADING]);
    expect(said).toEqual([expect.objectContaining({ livePatch: 'cve-a', reason: 'NodeRebooted' })]);
    expect(said[0]?.type ?? 'Warning').toBe('Warning');
    expect(said[0]?.message).toContain('patched again in its turn, within maxUnavailable');
    expect(rebootAnnouncements([LOADING], [LOADING])).toEqual([]);
  });

  test('NodeRepatched (Normal) once when it is Patched again, and nothing after', () => {
    expect(rebootAnnouncements([LOADING], [PATCHED])).toEqual([
      expect.objectContaining({ reason: 'NodeRepatched', type: 'Normal' }),
    ]);
    expect(rebootAnnouncements([PATCHED], [PATCHED])).toEqual([]);
  });

  test('a first load is not a reboot', () => {
    expect(rebootAnnouncements([], [entry('Loading', 'fetching')])).toEqual([]);
    expect(rebootAnnouncements([], [entry('Patched', 'enabled; transition complete')])).toEqual([]);
  });
});
