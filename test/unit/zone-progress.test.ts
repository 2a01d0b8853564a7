// `kubectl livepatch status` shows each zone's progress on one line, and stays
// one line at many zones.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, TopologySpec, TopologyStatus } from '../../src/api/generated/types.js';
import { renderStatus } from '../../src/cli/plugin-views.js';

const KEY = 'topology.kubernetes.io/zone';

const lp = (spec: TopologySpec | undefined, topology?: TopologyStatus): LivePatch => ({
  apiVersion: 'livepatch.io/v1alpha1',
  kind: 'LivePatch',
  metadata: { name: 'cve-1' },
  spec: {
    patchName: 'livepatch_cve_1' as LivePatch['spec']['patchName'],
    state: 'Enabled',
    kernels: [],
    failureBudget: 0,
    rollout: {
      maxUnavailable: 3,
      bakeTime: '0s',
      paused: false,
      ...(spec ? { topology: spec } : {}),
    },
    stall: { timeout: '60s', action: 'Rollback', allowForce: false },
  },
  status: { phase: 'Progressing', summary: '4/10', ...(topology ? { topology } : {}) },
});

describe('zone progress on the status page', () => {
  test('a few zones: each with patched/targeted and its nodes in flight, the nodes without the label by what they lack', () => {
    const page = renderStatus(
      lp(
        { key: KEY, order: 'ZoneByZone', maxUnavailable: 1 },
        {
          key: KEY,
          groups: 4,
          finished: 1,
          unlabeled: 1,
          zones: [
            { zone: 'eu-1a', targeted: 3, patched: 3, inFlight: 0 },
            { zone: 'eu-1b', targeted: 3, patched: 1, inFlight: 1 },
            { zone: 'eu-1c', targeted: 3, patched: 0, inFlight: 0 },
            { zone: '', targeted: 1, patched: 0, inFlight: 0 },
          ],
        },
      ),
      [],
    );
    expect(page.split('\n')).toContain(
      `  zones (${KEY}, zone by zone, 1 in flight per zone): eu-1a 3/3, eu-1b 1/3 (1 in flight), eu-1c 0/3, (no ${KEY} label) 0/1`,
    );
  });

  test('many zones: one line of counts, the zones in flight named (four at most), the unlabeled nodes counted', () => {
    const zones = Array.from({ length: 40 }, (_, i) => ({
      zone: `z${i}`,
      targeted: 5,
      patched: i < 30 ? 5 : i < 36 ? 2 : 0,
      inFlight: i >= 30 && i < 36 ? 1 : 0,
    }));
    const page = renderStatus(
      lp(
        { key: KEY, order: 'Parallel', maxUnavailable: '20%' },
        { key: KEY, groups: 41, finished: 30, unlabeled: 2, zones },
      ),
      [],
    );
    const lines = page.split('\n').filter((l) => l.startsWith('  zones'));
    expect(lines).toEqual([
      `  zones (${KEY}, 20% in flight per zone): 30/41 finished; in flight: z30 2/5 (1 in flight), z31 2/5 (1 in flight), z32 2/5 (1 in flight), z33 2/5 (1 in flight), 2 more; 2 node(s) without ${KEY}`,
    ]);
  });

  test('no line without spec.rollout.topology', () => {
    expect(renderStatus(lp(undefined), [])).not.toContain('zones');
  });
});
