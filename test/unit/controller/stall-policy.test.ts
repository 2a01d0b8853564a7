// stall.action over failureBudget (stall-policy.ts): Rollback, Halt, Ignore.
import { describe, expect, test } from '@jest/globals';
import { planRollout } from '../../../src/controller/planner.js';
import { classifyNodes } from '../../../src/controller/targets.js';
import {
  at,
  entry,
  Fleet,
  livePatch,
  LP,
  lpn,
  observed,
  QEMU,
  reconcile,
  simulate,
  T0,
} from './fixtures.js';
import { nth, order, phases, stallingFleet, withEntry } from './plan-helpers.js';

describe('stall policy', () => {
  test('Rollback: every node of the patch is switched to Disabled, maxUnavailable at a time, and ends RolledBack', () => {
    const { fleet, stalled } = stallingFleet(8, 4);
    const lp = livePatch({
      spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Rollback' } },
    });
    const sim = simulate(lp, fleet);
    expect(phases(sim.passes)).toEqual(['Progressing', 'RollingBack', 'RolledBack']);
    const rollback = sim.passes.find((p) => p.plan.phase === 'RollingBack');
    expect(rollback?.events.map((e) => e.reason)).toContain('RollbackStarted');
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    const holders = withEntry(fleet);
    expect(holders).toHaveLength(6);
    expect(holders.map((n) => fleet.desired(n)?.state)).toEqual(holders.map(() => 'Disabled'));
    expect(holders.filter((n) => fleet.observed(n)?.phase !== 'Unpatched')).toEqual(stalled);
    expect(sim.lp.status?.nodes).toMatchObject({ patched: 0, reverted: 5, stalled: 1 });
  });

  test('a node whose guard is reversing its stall counts as stalled at once: Rollback does not wait for the reversal', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const stuck = nth(pass.plan.started, 0);
    fleet.report(
      stuck,
      observed('Reversing', { transition: true, enabled: false, blockingTasks: [QEMU] }),
      at(61),
    );
    pass = reconcile(pass.lp, fleet, at(61));
    expect(pass.plan.phase).toBe('RollingBack');
    expect(pass.status.stalledNodes?.map((s) => s.node)).toEqual([stuck]);
    // It unpatches by itself; RolledBack waits for it, and its Stalled report (with the tasks) stays.
    expect(fleet.desired(stuck)?.state).toBe('Enabled');
    fleet.settle(at(62), Infinity, LP, new Set([stuck]));
    pass = reconcile(pass.lp, fleet, at(63));
    expect(pass.plan.phase).toBe('RollingBack');
    fleet.report(stuck, observed('Stalled', { blockingTasks: [QEMU] }), at(64));
    const sim = simulate(pass.lp, fleet, { now: at(64) });
    expect(sim.lp.status?.phase).toBe('RolledBack');
    expect(sim.lp.status?.stalledNodes?.map((s) => s.node)).toEqual([stuck]);
  });

  test('Rollback reverses the nodes still in transition first', () => {
    const fleet = Fleet.of(4, T0);
    const [a, b] = [nth(order(fleet), 0), nth(order(fleet), 1)];
    fleet.lpns.set(
      a,
      lpn(a, {
        heartbeat: T0,
        desired: [entry()],
        observed: [observed('Stalled', { blockingTasks: [{ pid: 1, comm: 'x' }] })],
      }),
    );
    fleet.lpns.set(
      b,
      lpn(b, { heartbeat: T0, desired: [entry()], observed: [observed('Transitioning')] }),
    );
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 1 } } });
    const plan = planRollout(lp, classifyNodes(lp, fleet.nodes, fleet.lpns, T0), T0);
    expect(plan).toMatchObject({ phase: 'RollingBack', started: [b] });
    expect(plan.writes.get(b)).toMatchObject({ state: 'Disabled' });
    expect(plan.writes.has(a)).toBe(false);
  });

  test('Halt: the rollout ends Failed and no new node starts', () => {
    const { fleet, stalled } = stallingFleet(8, 2);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Halt' } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status?.phase).toBe('Failed');
    expect(withEntry(fleet)).toHaveLength(4);
    const later = reconcile(sim.lp, fleet, sim.now + 3_600_000);
    expect(later.plan).toMatchObject({ phase: 'Failed', started: [] });
    expect(later.plan.writes.size).toBe(0);
    expect(fleet.desired(nth(stalled, 0))?.state).toBe('Enabled');
    expect(later.status.nodes).toMatchObject({ patched: 3, stalled: 1, pending: 4 });
  });

  test('Ignore: the rollout goes past the stalled node and completes', () => {
    const { fleet } = stallingFleet(8, 2);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Ignore' } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '7/8' });
    expect(sim.lp.status?.nodes).toMatchObject({ stalled: 1 });
  });

  test.each<[string, number[], string]>([
    ['failureBudget 1 tolerates one stalled node', [1], 'Complete'],
    ['failureBudget 1 rolls back at the second stalled node', [1, 5], 'RolledBack'],
  ])('%s', (_what, stallAt, end) => {
    const { fleet } = stallingFleet(8, ...stallAt);
    const lp = livePatch({ spec: { failureBudget: 1, rollout: { maxUnavailable: 2 } } });
    expect(simulate(lp, fleet).lp.status?.phase).toBe(end);
  });

  test('a node that failed to load counts against the failure budget like a stalled one', () => {
    const fleet = Fleet.of(3, T0);
    const first = nth(order(fleet), 0);
    const lp = livePatch({ spec: { stall: { action: 'Halt' } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.report(first, observed('Failed', { message: 'checksum mismatch' }), at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan.phase).toBe('Failed');
  });
});
