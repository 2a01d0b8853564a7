// spec.rollout.steps (rollout-steps.ts): counts, percentages, timed and empty
// pauses, and how edits, pauses and retries carry the step across generations.
import { describe, expect, test } from '@jest/globals';
import type { NodeName } from '../../../src/api/names.js';
import { planRollout } from '../../../src/controller/planner.js';
import { classifyNodes } from '../../../src/controller/targets.js';
import { at, edit, Fleet, livePatch, reconcile, simulate, T0 } from './fixtures.js';
import { stallingFleet, withEntry } from './plan-helpers.js';

describe('steps', () => {
  const steps = [{ nodes: 1 }, { pause: { duration: '10m' } }, { percent: 50 }];

  test('a canary node, a 10 minute pause, then half the fleet, then every node', () => {
    const fleet = Fleet.of(10, T0);
    let pass = reconcile(
      livePatch({ spec: { rollout: { maxUnavailable: 2, steps } } }),
      fleet,
      at(0),
    );
    expect(pass.plan.started).toHaveLength(1);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(10));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    expect(pass.plan.requeueAfterMs).toBe(600_000);
    expect(pass.status.currentStep).toBe(1);
    pass = reconcile(pass.lp, fleet, at(10 + 300));
    expect(pass.plan).toMatchObject({ phase: 'Paused', started: [] });
    expect(pass.plan.requeueAfterMs).toBe(300_000);
    pass = reconcile(pass.lp, fleet, at(10 + 600));
    expect(pass.plan).toMatchObject({ phase: 'Progressing' });
    expect(pass.plan.started).toHaveLength(2);
    expect(pass.status.currentStep).toBe(2);
    const sim = simulate(pass.lp, fleet, { now: at(611) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '10/10' });
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
  });

  test('a percent step grows the patched set to its share, rounded up, and no further before the next step', () => {
    const fleet = Fleet.of(10, T0);
    const lp = livePatch({
      spec: { rollout: { maxUnavailable: 10, steps: [{ percent: 30 }, { pause: {} }] } },
    });
    const sim = simulate(lp, fleet, { maxPasses: 10 });
    expect(sim.lp.status).toMatchObject({ phase: 'Paused', summary: '3/10', currentStep: 1 });
  });

  test('an empty pause holds until spec.rollout.paused is changed, then the rollout goes on', () => {
    const fleet = Fleet.of(4, T0);
    const lp = livePatch({ spec: { rollout: { steps: [{ nodes: 1 }, { pause: {} }] } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    expect(pass.plan.requeueAfterMs).toBeUndefined();
    pass = reconcile(pass.lp, fleet, at(3600));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
    // Each edit is a new generation, as the API server counts them.
    pass = reconcile(edit(pass.lp, { rollout: { paused: true } }), fleet, at(3601));
    expect(pass.plan).toMatchObject({ phase: 'Paused', started: [] });
    pass = reconcile(edit(pass.lp, { rollout: { paused: false } }), fleet, at(3602));
    expect(pass.plan).toMatchObject({ phase: 'Progressing' });
    expect(pass.plan.started).toHaveLength(1);
    const sim = simulate(pass.lp, fleet, { now: at(3603) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('an edit while the nodes after a released pause are in flight does not hold at that pause again', () => {
    const fleet = Fleet.of(6, T0);
    const lp = livePatch({
      spec: { rollout: { maxUnavailable: 2, steps: [{ nodes: 1 }, { pause: {} }, { nodes: 3 }] } },
    });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    pass = reconcile(edit(pass.lp, { rollout: { paused: true } }), fleet, at(3));
    pass = reconcile(edit(pass.lp, { rollout: { paused: false } }), fleet, at(4));
    expect(pass.plan.started).toHaveLength(2);
    // Both still in flight when the next edit comes.
    pass = reconcile(edit(pass.lp, { cves: ['CVE-2024-1086'] }), fleet, at(5));
    const sim = simulate(pass.lp, fleet, { now: at(6) });
    expect(sim.passes.map((p) => p.plan.reason)).not.toContain('PauseStep');
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('an edit during a timed pause neither skips nor restarts it', () => {
    const fleet = Fleet.of(4, T0);
    const lp = livePatch({
      spec: { rollout: { steps: [{ nodes: 1 }, { pause: { duration: '10m' } }] } },
    });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    pass = reconcile(edit(pass.lp, { cves: ['CVE-2024-1086'] }), fleet, at(302));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    expect(pass.plan.requeueAfterMs).toBe(300_000);
  });

  test('spec.rollout.paused starts no new node and reverses nothing, and unpausing goes on', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const first = pass.plan.started;
    pass = reconcile(edit(pass.lp, { rollout: { paused: true } }), fleet, at(1));
    fleet.settle(at(2));
    for (const t of [3, 60, 3600]) {
      pass = reconcile(pass.lp, fleet, at(t));
      expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'Paused', started: [] });
    }
    expect(withEntry(fleet).sort()).toEqual([...first].sort());
    expect(first.map((n) => fleet.observed(n)?.phase)).toEqual(['Patched', 'Patched']);
    const sim = simulate(edit(pass.lp, { rollout: { paused: false } }), fleet, { now: at(3601) });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('an unrelated edit does not release an empty pause', () => {
    const fleet = Fleet.of(3, T0);
    const lp = livePatch({ spec: { rollout: { steps: [{ nodes: 1 }, { pause: {} }] } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    pass = reconcile(edit(pass.lp, { cves: ['CVE-2024-1086'] }), fleet, at(3));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep', started: [] });
  });

  test('an edit to a complete rollout does not stop it at its pause steps again', () => {
    const fleet = Fleet.of(4, T0);
    const steps = [{ nodes: 1 }, { pause: { duration: '10m' } }, { pause: {} }];
    const sim = simulate(livePatch({ spec: { rollout: { steps } } }), fleet, { maxPasses: 20 });
    const released = reconcile(edit(sim.lp, { rollout: { paused: true } }), fleet, sim.now);
    const done = simulate(edit(released.lp, { rollout: { paused: false } }), fleet, {
      now: sim.now + 1,
    });
    expect(done.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
    const again = reconcile(edit(done.lp, { cves: ['CVE-2024-1086'] }), fleet, done.now);
    expect(again.plan).toMatchObject({ phase: 'Complete', started: [] });
  });

  test('a halted rollout retried by an edit does not repeat the pause it had passed', () => {
    const { fleet } = stallingFleet(4, 2);
    const lp = livePatch({
      spec: {
        stall: { action: 'Halt' },
        rollout: { steps: [{ nodes: 1 }, { pause: { duration: '10m' } }] },
      },
    });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Failed', currentStep: 2 });
    const retry = reconcile(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, sim.now);
    expect(retry.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
  });

  test('after a rollback, the retried rollout holds at its pause step again', () => {
    const { fleet } = stallingFleet(4, 1);
    const steps = [{ nodes: 2 }, { pause: { duration: '10m' } }];
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, steps } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    let pass = reconcile(edit(sim.lp, { stall: { timeout: '5m' } }), fleet, sim.now);
    expect(pass.plan.started).toHaveLength(2);
    fleet.settle(sim.now + 1);
    pass = reconcile(pass.lp, fleet, sim.now + 2);
    expect(pass.plan).toMatchObject({
      phase: 'Paused',
      reason: 'PauseStep',
      requeueAfterMs: 600_000,
    });
  });

  test('a LivePatch created paused starts nothing', () => {
    const fleet = Fleet.of(3, T0);
    const plan = planRollout(
      livePatch({ spec: { rollout: { paused: true } } }),
      classifyNodes(livePatch(), fleet.nodes, fleet.lpns, T0),
      T0,
    );
    expect(plan).toMatchObject({ phase: 'Paused', started: [] });
    expect(plan.writes.has('b' as NodeName)).toBe(false);
  });
});
