// The health gate while a node bakes (bake.ts), as the planner acts on it:
// a node that turns NotReady, goes silent or taints its kernel fails.
import { describe, expect, test } from '@jest/globals';
import type { NodeName } from '../../../src/api/names.js';
import { AGENT_STALE_MS } from '../../../src/api/heartbeat.js';
import { at, edit, Fleet, livePatch, reconcile, simulate, T0, type Pass } from './fixtures.js';
import { nth, order } from './plan-helpers.js';

describe('the health gate while a node bakes', () => {
  const W = 1 << 9;
  const baking = (o: { failureBudget?: number; action?: 'Rollback' | 'Halt' | 'Ignore' } = {}) =>
    livePatch({
      spec: {
        failureBudget: o.failureBudget ?? 0,
        stall: { action: o.action ?? 'Rollback' },
        rollout: { maxUnavailable: 1, bakeTime: '5m' },
      },
    });

  /** Starts the first node, patches it at 10 s, lets `harm` happen to it, and reconciles at `when`. */
  function harmed(
    harm: (fleet: Fleet, victim: NodeName) => void,
    when: number,
    lp = baking(),
  ): { pass: Pass; victim: NodeName; fleet: Fleet } {
    const fleet = Fleet.of(3, T0);
    let pass = reconcile(lp, fleet, at(0));
    const victim = nth(pass.plan.started, 0);
    fleet.settle(at(10));
    pass = reconcile(pass.lp, fleet, at(11));
    harm(fleet, victim);
    return { pass: reconcile(pass.lp, fleet, when), victim, fleet };
  }

  const notReady = (fleet: Fleet, victim: NodeName): void => {
    fleet.nodes = fleet.nodes.map((n) => (n.name === victim ? { ...n, ready: false } : n));
  };
  const silent = (fleet: Fleet, victim: NodeName): void => {
    fleet.gone.add(victim);
  };
  const warned = (fleet: Fleet, victim: NodeName): void => {
    fleet.taint(victim, W);
  };

  test.each<[string, (fleet: Fleet, victim: NodeName) => void, number, string]>([
    ['its Node turns NotReady', notReady, at(20), 'NodeNotReady'],
    ['its agent stops reporting', silent, at(11 + AGENT_STALE_MS / 1000 + 1), 'AgentSilent'],
    ['its kernel gains the W (warning) taint', warned, at(20), 'KernelTainted'],
  ])(
    'a baking node whose %s fails, with the reason in status and an Event',
    (_w, harm, when, reason) => {
      const { pass, victim } = harmed(harm, when, baking({ failureBudget: 1 }));
      expect(pass.status.unhealthyNodes).toEqual([
        expect.objectContaining({ node: victim, reason, generation: 1 }),
      ]);
      expect(pass.status.nodes).toMatchObject({ failed: 1, patched: 0 });
      expect(pass.events).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'NodeUnhealthy' }),
      );
      expect(pass.events.find((e) => e.reason === 'NodeUnhealthy')?.message).toContain(victim);
      // Within the budget, its slot frees: the next node starts.
      expect(pass.plan.started).toEqual([nth(order(Fleet.of(3, T0)), 1)]);
    },
  );

  test('over the failure budget, the stall action fires: Rollback unpatches every node', () => {
    const { pass, fleet } = harmed(warned, at(20));
    expect(pass.plan.phase).toBe('RollingBack');
    const sim = simulate(pass.lp, fleet, { now: at(21) });
    expect(sim.lp.status?.phase).toBe('RolledBack');
    expect(sim.lp.status?.unhealthyNodes).toHaveLength(1);
  });

  test('the taint before and after the load is recorded, as the kernel prints it', () => {
    const { pass } = harmed((fleet, victim) => {
      fleet.taint(victim, (1 << 12) | (1 << 13) | (1 << 15) | W);
    }, at(20));
    const [record] = pass.status.unhealthyNodes ?? [];
    expect(record).toMatchObject({ reason: 'KernelTainted', taintBefore: '', taintAfter: 'WOEK' });
    expect(record?.message).toContain('gained taint W');
  });

  test('a module that taints the kernel on load fails its node when it is Patched', () => {
    const fleet = Fleet.of(2, T0);
    let pass = reconcile(baking({ failureBudget: 1 }), fleet, at(0));
    fleet.loadTaint.set(nth(pass.plan.started, 0), W);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(6));
    expect(pass.status.unhealthyNodes?.[0]).toMatchObject({
      reason: 'KernelTainted',
      taintAfter: 'W',
    });
  });

  test.each([
    [
      'O (out-of-tree), E (unsigned) and K (livepatch) are not damage',
      (1 << 12) | (1 << 13) | (1 << 15),
    ],
    ['a taint the node had before the load is not new', 0],
  ])('%s: the node bakes and the rollout completes', (_what, loadTaint) => {
    const fleet = Fleet.of(2, T0);
    for (const n of fleet.nodes) fleet.taint(n.name, loadTaint === 0 ? W : 0);
    for (const n of fleet.nodes) fleet.loadTaint.set(n.name, loadTaint);
    const sim = simulate(baking(), fleet, { tickMs: 60_000 });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '2/2' });
    expect(sim.lp.status?.unhealthyNodes).toBeUndefined();
  });

  test('a node that failed its bake stays failed when it comes back; an edit clears it', () => {
    const { pass, victim, fleet } = harmed(notReady, at(20), baking({ failureBudget: 1 }));
    fleet.nodes = fleet.nodes.map((n) => ({ ...n, ready: true }));
    const back = reconcile(pass.lp, fleet, at(30));
    expect(back.status.unhealthyNodes?.map((u) => u.node)).toEqual([victim]);
    expect(back.status.nodes).toMatchObject({ failed: 1 });
    const edited = reconcile(edit(back.lp, { failureBudget: 2 }), fleet, at(31));
    expect(edited.status.unhealthyNodes).toBeUndefined();
    expect(edited.status.nodes).toMatchObject({ failed: 0 });
  });

  test('a node that turns NotReady after its bake is not held against the patch', () => {
    const fleet = Fleet.of(1, T0);
    const sim = simulate(baking(), fleet, { tickMs: 60_000 });
    expect(sim.lp.status?.phase).toBe('Complete');
    fleet.nodes = fleet.nodes.map((n) => ({ ...n, ready: false }));
    const later = reconcile(sim.lp, fleet, sim.now + 1000);
    expect(later.status.unhealthyNodes).toBeUndefined();
    expect(later.status.phase).toBe('Complete');
  });
});
