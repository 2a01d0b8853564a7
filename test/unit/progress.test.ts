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
    spec: { patchName: 'livepatch_cve_1', kernels: [] },
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

  test('a gated LivePatch says what the alert gate holds, and when the alerts were read', () => {
    const page = renderStatus(
      lp(
        { targeted: 4, patched: 1 },
        {
          phase: 'Waiting',
          alertGate: {
            state: 'Firing',
            firing: 1,
            alerts: [{ name: 'DiskFull' }],
            checkedAt: '2026-11-27T10:11:12.000Z',
            message: '1 matching alert(s) firing: DiskFull; no new node starts until they clear',
          },
        },
      ),
      [],
    );
    expect(page.split('\n')).toContain(
      '  alert gate: Firing: 1 matching alert(s) firing: DiskFull; no new node starts until they clear (alerts read 2026-11-27T10:11:12.000Z)',
    );
    expect(renderStatus(lp({ targeted: 1, patched: 1 }), [])).not.toContain('alert gate');
  });
});
