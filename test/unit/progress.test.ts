// The progress line and bar of a rollout, as the demo and `status -w` print them,
// and the status page of `kubectl livepatch status`.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../src/api/generated/types.js';
import { progressBar, progressLine } from '../../src/cli/progress.js';
import type { LivePatchName, NodeName } from '../../src/api/names.js';
import { renderStatus } from '../../src/cli/plugin-views.js';

const lp = (
  nodes: Record<string, number>,
  extra: Partial<NonNullable<LivePatch['status']>> = {},
): LivePatch =>
  ({
    apiVersion: 'livepatch.io/v1alpha1',
    kind: 'LivePatch',
    metadata: { name: 'cve-1' },

    // spec.rollout as the API server defaults it.
    spec: { patchName: 'livepatch_cve_1', kernels: [], rollout: {} },
    status: {
      phase: 'Progressing',
      summary: `${nodes['patched'] ?? 0}/${nodes['targeted'] ?? 0}`,
      nodes,
      ...extra,
    },
  }) as unknown as LivePatch;

describe('progress', () => {
  test('the bar fills with the patched share of the targeted nodes', () => {
    expect(
      progressBar(lp({ targeted: 40, patched: 10, transitioning: 2, stalled: 1, failed: 0 }), 20),
    ).toBe('[#####---------------] 10/40 patched, 2 in flight, 1 stalled, 0 failed');
    expect(progressBar(lp({ targeted: 0, patched: 0 }), 4)).toBe(
      '[----] 0/0 patched, 0 in flight, 0 stalled, 0 failed',
    );
  });

  test('the line names the stalled nodes and what blocks them', () => {
    const line = progressLine(
      lp(
        { targeted: 4, patched: 1, transitioning: 1, notApplicable: 2 },
        {
          stalledNodes: [
            { node: 'n1' as NodeName, since: '', blockingTasks: [{ pid: 7, comm: 'qemu-kvm' }] },
          ],
        },
      ),
      new Date('2026-11-27T10:11:12Z'),
    );
    expect(line).toBe(
      '10:11:12  cve-1           Progressing   patched 1/4     in flight 1   not applicable 2    stalled: n1 (qemu-kvm[7])',
    );
  });
});

describe('status page', () => {
  test('a superseded LivePatch says by which LivePatches and on how many nodes', () => {
    const page = renderStatus(
      lp(
        { targeted: 4, patched: 0, replaced: 4 },
        {
          phase: 'Complete',
          supersededBy: [
            { livePatch: 'cve-2' as LivePatchName, nodes: 3 },
            { livePatch: 'cve-3' as LivePatchName, nodes: 1 },
          ],
        },
      ),
      [],
    );
    expect(page.split('\n')).toContain('  superseded by: cve-2 on 3 nodes, cve-3 on 1 node');
    expect(renderStatus(lp({ targeted: 1, patched: 1 }), [])).not.toContain('superseded');
  });
});

describe('status page: the maintenance window', () => {
  const windowed = (status: Partial<NonNullable<LivePatch['status']>>): LivePatch => {
    const base = lp({ targeted: 4, patched: 0 }, status);
    const window = {
      days: ['saturday', 'sunday'],
      startTime: '01:00',
      endTime: '05:00',
      timeZone: 'Europe/Berlin',
    } as const;
    return { ...base, spec: { ...base.spec, rollout: { ...base.spec.rollout, window } } };
  };

  test('closed: when it opens, in UTC and on its own clock', () => {
    const page = renderStatus(
      windowed({ phase: 'Waiting', window: { open: false, nextOpen: '2026-01-17T00:00:00Z' } }),
      [],
    );
    expect(page.split('\n')).toContain(
      '  window: saturday, sunday 01:00-05:00 Europe/Berlin: closed, opens 2026-01-17T00:00:00Z (Sat 2026-01-17 01:00 Europe/Berlin (UTC+01:00))',
    );
  });

  test('open: when it closes', () => {
    const page = renderStatus(
      windowed({
        window: { open: true, closesAt: '2026-01-17T04:00:00Z', nextOpen: '2026-01-18T00:00:00Z' },
      }),
      [],
    );
    expect(page.split('\n')).toContain(
      '  window: saturday, sunday 01:00-05:00 Europe/Berlin: open, closes 2026-01-17T04:00:00Z (Sat 2026-01-17 05:00 Europe/Berlin (UTC+01:00))',
    );
  });

  test('a window the controller cannot read: what the controller said to fix', () => {
    const message =
      'spec.rollout.window.timeZone "Europe/Berln" is not a time zone this controller knows';
    const page = renderStatus(
      windowed({
        phase: 'Waiting',
        conditions: [
          {
            type: 'Reconciling',
            status: 'True',
            reason: 'InvalidWindow',
            message,
            lastTransitionTime: '',
          },
        ],
      }),
      [],
    );
    expect(page.split('\n')).toContain(
      `  window: saturday, sunday 01:00-05:00 Europe/Berlin: ${message}`,
    );
  });
});
