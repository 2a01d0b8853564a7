// Rolling forward (enable-nodes.ts): maxUnavailable slots, rollout order,
// nodes that settle, go silent, bake, join or leave, as whole simulated
// rollouts: pure functions, injected time, a fleet of plain objects whose
// agents answer like the real one.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../../src/api/generated/types.js';
import type { NodeName } from '../../../src/api/names.js';
import type { Plan } from '../../../src/controller/plan.js';
import { planRollout } from '../../../src/controller/planner.js';
import { classifyNodes } from '../../../src/controller/targets.js';
import {
  at,
  Fleet,
  inFlight,
  livePatch,
  LP,
  lpn,
  node,
  observed,
  reconcile,
  simulate,
  T0,
} from './fixtures.js';
import { nth, order } from './plan-helpers.js';

describe('rolling pacing', () => {
  test('20 nodes at maxUnavailable 25%: never more than 5 in flight, each started once in rollout order, Complete', () => {
    const fleet = Fleet.of(20, T0);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: '25%' } } }), fleet, {
      perTick: 2,
    });
    const started = sim.passes.flatMap((p) => p.plan.started);
    expect(started).toEqual(order(fleet));
    expect(sim.maxInFlight).toBe(5);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '20/20' });
  });

  test('a node that settles frees its slot: the next node starts at once, the others go on', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 3 } } }), fleet, at(0));
    expect(pass.plan.started).toEqual(order(fleet).slice(0, 3));
    const [done] = fleet.settle(at(1), 1);
    pass = reconcile(pass.lp, fleet, at(1));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesStarted' });
    expect(pass.plan.started).toEqual([nth(order(fleet), 3)]);
    expect(inFlight(pass.lp, fleet, at(1))).toHaveLength(3);
    expect(inFlight(pass.lp, fleet, at(1))).not.toContain(done);
  });

  test('a slow node holds one slot only: the fast ones stream past it through the other', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const slow = new Set([nth(order(fleet), 0)]);
    for (let t = 1; t <= 6; t++) {
      fleet.settle(at(t), Infinity, LP, slow);
      pass = reconcile(pass.lp, fleet, at(t));
    }
    expect(pass.status.nodes).toMatchObject({ patched: 5, transitioning: 1, pending: 0 });
    fleet.settle(at(7));
    pass = reconcile(pass.lp, fleet, at(7));
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
  });

  test('a node that goes silent mid-transition keeps its slot: the patch may have taken it down', () => {
    const fleet = Fleet.of(6, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    const [crashed, fine] = [nth(pass.plan.started, 0), nth(pass.plan.started, 1)];
    fleet.settle(at(1), Infinity, LP, new Set([crashed]));
    fleet.report(crashed, observed('Transitioning'), at(1));
    fleet.gone.add(crashed);
    fleet.nodes = fleet.nodes.map((n) => (n.name === crashed ? { ...n, ready: false } : n));
    pass = reconcile(pass.lp, fleet, at(120));
    expect(fleet.observed(fine)?.phase).toBe('Patched');
    expect(pass.plan.started).toHaveLength(1);
    expect(pass.plan.message).toContain(crashed);
    fleet.settle(at(121), Infinity, LP, new Set([crashed]));
    pass = reconcile(pass.lp, fleet, at(122));
    expect(pass.plan.started).toHaveLength(1);
    expect(inFlight(pass.lp, fleet, at(122))).toHaveLength(1);
    expect(pass.status.nodes).toMatchObject({ unknown: 1, patched: 2 });
  });

  test('a stalled node frees its slot like a patched one when the failure budget allows it', () => {
    const fleet = Fleet.of(4, T0);
    fleet.stallOn.add(nth(order(fleet), 0));
    const lp = livePatch({ spec: { failureBudget: 1, rollout: { maxUnavailable: 2 } } });
    const sim = simulate(lp, fleet);
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '3/4' });
  });

  test('bakeTime: a patched node keeps its slot until its agent reports the bake over, then the next starts', () => {
    const fleet = Fleet.of(3, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 1, bakeTime: '30s' } } });
    let pass = reconcile(lp, fleet, at(0));
    const first = nth(pass.plan.started, 0);
    expect(fleet.desired(first)?.bakeTime).toBe('30s');
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(10));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight', started: [] });
    expect(pass.plan.message).toContain('1 baking');
    expect(pass.status.nodes).toMatchObject({ patched: 1 });
    pass = reconcile(pass.lp, fleet, at(34));
    expect(pass.plan.started).toEqual([]);
    pass = reconcile(pass.lp, fleet, at(35));
    expect(fleet.observed(first)?.taintAfterBake).toBe(0);
    expect(pass.plan.started).toEqual([nth(order(fleet), 1)]);
  });

  test('a rollout with a bake is Complete only once the last node has baked', () => {
    const fleet = Fleet.of(2, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, bakeTime: '1h' } } });
    let pass = reconcile(lp, fleet, at(0));
    expect(pass.plan.started).toHaveLength(2);
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.plan.phase).toBe('Progressing');
    pass = reconcile(pass.lp, fleet, at(3601));
    expect(pass.plan.phase).toBe('Complete');
  });

  test('a node that joins mid-rollout is patched later; one that leaves is no longer counted', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    expect(pass.plan.started).toHaveLength(2);
    const joined = node('node-99');
    fleet.nodes = [...fleet.nodes, joined];
    fleet.lpns.set(joined.name, lpn(joined.name, { heartbeat: at(1) }));
    const leaving = fleet.nodes.find(
      (n) => !pass.plan.started.includes(n.name) && n.name !== joined.name,
    );
    fleet.nodes = fleet.nodes.filter((n) => n !== leaving);
    fleet.settle(at(1));
    fleet.beat(at(1));
    pass = reconcile(pass.lp, fleet, at(2));
    expect(pass.status.nodes).toMatchObject({ targeted: 4, patched: 2 });
    for (let t = 3; pass.status.phase !== 'Complete' && t < 20; t++) {
      fleet.settle(at(t));
      pass = reconcile(pass.lp, fleet, at(t));
    }
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
    expect(fleet.desired(joined.name)?.state).toBe('Enabled');
    expect(leaving && fleet.desired(leaving.name)).toBeUndefined();
  });

  test('the rollout order is the same on every pass, whatever order the nodes are listed in', () => {
    const fleet = Fleet.of(12, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 4 } } });
    const plan = (nodes: Fleet['nodes']): readonly NodeName[] =>
      planRollout(lp, classifyNodes(lp, nodes, fleet.lpns, T0), T0).started;
    const once = plan(fleet.nodes);
    expect(plan(fleet.nodes)).toEqual(once);
    expect(plan([...fleet.nodes].reverse())).toEqual(once);
    expect(once).toEqual(order(fleet).slice(0, 4));
  });

  test('two LivePatches do not start on the same first nodes', () => {
    const fleet = Fleet.of(20, T0);
    expect(order(fleet, 'cve-a').slice(0, 5)).not.toEqual(order(fleet, 'cve-b').slice(0, 5));
  });

  test('a restarted controller picks up the same rollout from the status and the nodes alone', () => {
    const fleet = Fleet.of(6, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2, bakeTime: '30s' } } });
    let pass = reconcile(lp, fleet, at(0));
    fleet.settle(at(1), 1);
    pass = reconcile(pass.lp, fleet, at(2));
    const restart = (now: number): Plan =>
      planRollout(
        JSON.parse(JSON.stringify(pass.lp)) as LivePatch,
        classifyNodes(pass.lp, fleet.nodes, fleet.lpns, now),
        now,
      );
    expect(restart(at(20))).toMatchObject({ reason: 'NodesInFlight', started: [] });
    fleet.beat(at(31));
    expect(restart(at(31)).started).toEqual([nth(order(fleet), 2)]);
  });

  test('a pass with nothing to change writes nothing, however the API server orders the fields', () => {
    const fleet = Fleet.of(4, T0);
    let pass = reconcile(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, at(0));
    pass = reconcile(pass.lp, fleet, at(1));
    expect(pass.plan.writes.size).toBe(0);
    fleet.settle(at(2));
    pass = reconcile(pass.lp, fleet, at(3));
    expect(pass.plan.started).toHaveLength(2);
    expect(pass.plan.writes.size).toBe(2);
  });
});
