// The controller's side of a series (spec.series): nodes where a newer member
// superseded a LivePatch count as done for it and say by which; when the newer
// member goes, the older build is loaded again node by node within
// maxUnavailable, like any rollout.
import { describe, expect, test } from '@jest/globals';
import type { DesiredPatch, LivePatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, NodeName, PatchName } from '../../../src/api/names.js';
import { planRollout } from '../../../src/controller/planner.js';
import { classifyNodes, seriesSequenceOwner } from '../../../src/controller/targets.js';
import {
  at,
  entry,
  Fleet,
  iso,
  livePatch,
  observed,
  reconcile,
  simulate,
  withMetadata,
} from './fixtures.js';

const NEWER = 'fix-v2' as LivePatchName;
const SERIES = { name: 'cmdline', sequence: 1 };

function newerEntry(o: Partial<DesiredPatch> = {}): DesiredPatch {
  return entry({
    livePatch: NEWER,
    patchName: 'lpt_cmdline_v2' as PatchName,
    series: { name: 'cmdline', sequence: 2 },
    ...o,
  });
}

/** Six nodes where the older member completed, then the newer one replaced it everywhere. */
function superseded(): { fleet: Fleet; lp: LivePatch; now: number } {
  const fleet = Fleet.of(6, at(0));
  const sim = simulate(
    livePatch({ spec: { series: SERIES, rollout: { maxUnavailable: 2 } } }),
    fleet,
  );
  expect(sim.lp.status?.phase).toBe('Complete');
  for (const n of fleet.nodes) {
    fleet.apply(NEWER, new Map([[n.name, newerEntry()]]));
    fleet.report(n.name, observed('Replaced', { replacedBy: NEWER, message: 'superseded' }));
    fleet.report(n.name, {
      ...observed('Patched'),
      livePatch: NEWER,
      patchName: 'lpt_cmdline_v2' as PatchName,
    });
  }
  return { fleet, lp: sim.lp, now: sim.now };
}

describe('a LivePatch superseded by a newer member of its series', () => {
  test('its entries carry the series, so each agent knows the order', () => {
    const { fleet } = superseded();
    for (const n of fleet.nodes) expect(fleet.desired(n.name)?.series).toEqual(SERIES);
  });

  test('its nodes count as replaced and done, and its status says by which LivePatch', () => {
    const { fleet, lp, now } = superseded();
    const pass = reconcile(lp, fleet, now);
    expect(pass.status.phase).toBe('Complete');
    expect(pass.status.nodes).toMatchObject({ targeted: 6, replaced: 6, pending: 0, patched: 0 });
    expect(pass.status.supersededBy).toEqual([{ livePatch: NEWER, nodes: 6 }]);
    expect(pass.plan.writes.size).toBe(0);
  });
});

describe('the newer member deleted or disabled', () => {
  test.each([
    ['deleted (its entries removed)', null],
    ['disabled (its entries Disabled)', newerEntry({ state: 'Disabled', generation: 2 })],
  ])('%s: the older build is loaded again, at most maxUnavailable nodes at a time', (_, after) => {
    const { fleet, lp, now: start } = superseded();
    for (const n of fleet.nodes) {
      fleet.apply(NEWER, new Map([[n.name, after]]));
      if (after)
        fleet.report(n.name, {
          ...observed('Unpatched', { observedGeneration: 2 }),
          livePatch: NEWER,
          patchName: 'lpt_cmdline_v2' as PatchName,
        });
    }
    let current = lp;
    let now = start;
    const startedOnce = new Set<NodeName>();
    let most = 0;
    for (let i = 0; i < 20; i++) {
      const pass = reconcile(current, fleet, now);
      current = pass.lp;
      for (const n of pass.plan.started) {
        expect(startedOnce.has(n)).toBe(false);
        startedOnce.add(n);
        expect(fleet.desired(n)?.fallback).toBe(true);
      }
      const falling = fleet.nodes.filter(
        (n) => fleet.desired(n.name)?.fallback && fleet.observed(n.name)?.phase === 'Replaced',
      );
      most = Math.max(most, falling.length);
      // Agents load the build again only where the controller said so (entry.fallback).
      for (const n of falling.slice(0, 1))
        fleet.report(
          n.name,
          observed('Patched', { patchedTime: iso(now), taintBeforeLoad: 0 }),
          now,
        );
      if (pass.status.phase === 'Complete' && pass.status.nodes?.patched === 6) break;
      now += 1000;
    }
    expect(most).toBe(2);
    expect(startedOnce.size).toBe(6);
    const last = reconcile(current, fleet, now);
    expect(last.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
    expect(last.status.supersededBy).toBeUndefined();
    // Patched again: the mark is cleared, so a later newer member and its removal are paced again.
    for (const n of fleet.nodes) expect(fleet.desired(n.name)?.fallback).toBeUndefined();
  });

  test('a node whose newer member stands does not fall back', () => {
    const { fleet, lp, now } = superseded();
    const [first] = fleet.nodes;
    if (!first) throw new Error('no node');
    for (const n of fleet.nodes.slice(1)) fleet.apply(NEWER, new Map([[n.name, null]]));
    const pass = reconcile(lp, fleet, now);
    expect(pass.plan.started).not.toContain(first.name);
    // Counted as this pass found them: five waiting to fall back, two of them started now.
    expect(pass.status.nodes).toMatchObject({ replaced: 1, pending: 5 });
    expect(pass.plan.started).toHaveLength(2);
    expect(pass.status.supersededBy).toEqual([{ livePatch: NEWER, nodes: 1 }]);
  });
});

test('a LivePatch without a series keeps the old meaning of Replaced: done, never started again', () => {
  const fleet = Fleet.of(2, at(0));
  const sim = simulate(livePatch(), fleet);
  for (const n of fleet.nodes) fleet.report(n.name, observed('Replaced'));
  const pass = reconcile(sim.lp, fleet, sim.now);
  expect(pass.plan.started).toEqual([]);
  expect(pass.status.nodes).toMatchObject({ replaced: 2 });
});

describe('two LivePatches declaring one series and sequence', () => {
  const SAME = { name: 'cmdline', sequence: 3 };
  const older = withMetadata(livePatch({ name: 'first', spec: { series: SAME } }), {
    creationTimestamp: new Date(at(0)),
  });
  const younger = withMetadata(
    livePatch({
      name: 'second',
      spec: { series: SAME, patchName: 'livepatch_other' as PatchName },
    }),
    { creationTimestamp: new Date(at(1)) },
  );

  test('the younger one touches no node and says which LivePatch holds the sequence and what to do', () => {
    expect(seriesSequenceOwner(older, [older, younger])).toBeUndefined();
    expect(seriesSequenceOwner(younger, [older, younger])).toBe('first');
    const fleet = Fleet.of(3, at(0));
    const slots = classifyNodes(younger, fleet.nodes, fleet.lpns, at(0));
    const plan = planRollout(younger, slots, at(0), { seriesSequenceOwner: 'first' });
    expect(plan).toMatchObject({ phase: 'Failed', reason: 'SeriesSequenceInUse' });
    expect(plan.writes.size).toBe(0);
    expect(plan.message).toContain('Give it another spec.series.sequence, or delete first');
  });

  test('another sequence, another series, or no series: no conflict', () => {
    const other = (series: LivePatch['spec']['series']): LivePatch =>
      withMetadata(livePatch({ name: 'second', spec: series ? { series } : {} }), {
        creationTimestamp: new Date(at(1)),
      });
    for (const lp of [
      other({ name: 'cmdline', sequence: 4 }),
      other({ name: 'other', sequence: 3 }),
      other(undefined),
    ])
      expect(seriesSequenceOwner(lp, [older, lp])).toBeUndefined();
  });
});
