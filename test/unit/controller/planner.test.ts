// Which rule a pass applies (planner.ts): a patchName another LivePatch owns,
// and a new generation after Complete, RolledBack or Disabled.
import { describe, expect, test } from '@jest/globals';
import type { NodeName } from '../../../src/api/names.js';
import { aggregateStatus } from '../../../src/controller/aggregator.js';
import { planRollout } from '../../../src/controller/planner.js';
import { classifyNodes, patchNameOwner } from '../../../src/controller/targets.js';
import {
  at,
  edit,
  entry,
  Fleet,
  inFlight,
  K26,
  livePatch,
  lpn,
  module,
  observed,
  reconcile,
  simulate,
  withMetadata,
  T0,
} from './fixtures.js';
import { names, nth, phases, slotOf, stallingFleet } from './plan-helpers.js';

describe('two LivePatches with one patchName', () => {
  test('the younger one does nothing and says which LivePatch owns the name', () => {
    const older = withMetadata(livePatch({ name: 'first' }), { creationTimestamp: new Date(T0) });
    const younger = withMetadata(livePatch({ name: 'second' }), {
      creationTimestamp: new Date(T0 + 1000),
    });
    expect(patchNameOwner(older, [older, younger])).toBeUndefined();
    expect(patchNameOwner(younger, [older, younger])).toBe('first');
    const fleet = Fleet.of(3, T0);
    const plan = planRollout(younger, classifyNodes(younger, fleet.nodes, fleet.lpns, T0), T0, {
      patchNameOwner: 'first',
    });
    expect(plan).toMatchObject({ phase: 'Failed', reason: 'PatchNameInUse' });
    expect(plan.writes.has('b' as NodeName)).toBe(false);
    expect(plan.message).toContain('LivePatch first already rolls out patchName');
  });

  test('once the owner is gone, the waiting one starts at its next pass and completes', () => {
    const fleet = Fleet.of(3, T0);
    const lp = livePatch();
    const waiting = planRollout(lp, classifyNodes(lp, fleet.nodes, fleet.lpns, T0), T0, {
      patchNameOwner: 'first',
    });
    const status = aggregateStatus(lp, classifyNodes(lp, fleet.nodes, fleet.lpns, T0), waiting, T0);
    expect(status.phase).toBe('Failed');
    const sim = simulate({ ...lp, status }, fleet, { now: T0 + 1000 });
    expect(phases(sim.passes)).toEqual(['Progressing', 'Complete']);
  });
});

describe('a new generation', () => {
  test('patched nodes keep their entry and stay counted patched; stalled nodes of the old generation are tried again', () => {
    const { fleet, stalled } = stallingFleet(6, 1);
    const sim = simulate(
      livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Halt' } } }),
      fleet,
    );
    expect(sim.lp.status).toMatchObject({ phase: 'Failed', summary: '1/6' });
    const patched = names(fleet).filter((n) => fleet.observed(n)?.phase === 'Patched');
    const before = new Map(patched.map((n) => [n, fleet.desired(n)]));
    const lp = edit(sim.lp, { stall: { timeout: '5m' } });
    let pass = reconcile(lp, fleet, sim.now);
    for (const n of patched)
      expect(pass.plan.writes.get(n)).toEqual({
        ...before.get(n),
        generation: 2,
        stallTimeout: '5m',
      });
    expect(pass.plan.started).toContain(nth(stalled, 0));
    expect(pass.status.nodes).toMatchObject({ patched: 1, stalled: 0 });
    // Before the agents answer for generation 2, the patched nodes are still patched.
    pass = reconcile(pass.lp, fleet, sim.now + 1000);
    expect(pass.status.nodes).toMatchObject({ patched: 1 });
    for (const n of patched) expect(inFlight(pass.lp, fleet, sim.now + 1000)).not.toContain(n);
    const done = simulate(pass.lp, fleet, { now: sim.now + 2000 });
    expect(done.lp.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('a complete rollout stays Complete through an edit, with no second Completed event', () => {
    const fleet = Fleet.of(4, T0);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    let pass = reconcile(edit(sim.lp, { cves: ['CVE-2024-1086'] }), fleet, sim.now);
    const passes = [pass];
    pass = reconcile(pass.lp, fleet, sim.now + 1);
    passes.push(pass);
    fleet.settle(sim.now + 2);
    passes.push(reconcile(pass.lp, fleet, sim.now + 3));
    expect(passes.map((p) => p.status.phase)).toEqual(['Complete', 'Complete', 'Complete']);
    expect(passes.map((p) => p.status.summary)).toEqual(['4/4', '4/4', '4/4']);
    expect(passes.flatMap((p) => p.events)).toEqual([]);
  });

  test('a new module build: the next nodes load it; patched nodes take it in their entry but do no kernel work', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const first = pass.plan.started;
    fleet.settle(at(1));
    const lp = edit(pass.lp, { kernels: [{ release: K26, module: module('k26v2') }] });
    pass = reconcile(lp, fleet, at(2));
    for (const n of first) {
      expect(fleet.desired(n)?.module).toEqual(module('k26v2'));
      expect(pass.plan.started).not.toContain(n);
      expect(slotOf(pass.slots, n)).toMatchObject({ progress: 'patched' });
    }
    for (const n of pass.plan.started) expect(fleet.desired(n)?.module).toEqual(module('k26v2'));
  });

  test('after a rollback, editing the LivePatch tries the rollout again', () => {
    const { fleet } = stallingFleet(4, 1);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const retry = simulate(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, { now: sim.now });
    expect(retry.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('re-enabling a disabled patch rolls it out again from the first nodes', () => {
    const fleet = Fleet.of(2, T0);
    const lp = livePatch({ spec: { state: 'Disabled', rollout: { bakeTime: '1h' } } });
    fleet.lpns.set(
      'node-01',
      lpn('node-01', {
        heartbeat: T0,
        desired: [entry({ state: 'Disabled' })],
        observed: [observed('Unpatched')],
      }),
    );
    const plan = planRollout(
      edit(lp, { state: 'Enabled' }),
      classifyNodes(lp, fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(plan.started).toHaveLength(1);
  });
});
