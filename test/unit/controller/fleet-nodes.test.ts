// Nodes that go dark, come back, join after a rollout, or reboot
// (enable-nodes.ts, aggregator.ts, decision-events.ts): a targeted node that
// cannot be reached keeps the LivePatch from Complete, and is named; joining
// and rebooted nodes are patched within maxUnavailable, without anyone acting.
import { describe, expect, test } from '@jest/globals';
import type { Condition, LivePatch } from '../../../src/api/generated/types.js';
import {
  at,
  Fleet,
  inFlight,
  K27,
  livePatch,
  lpn,
  module,
  node,
  observed,
  reconcile,
  simulate,
  T0,
  type Pass,
} from './fixtures.js';
import { completed, nth, order } from './plan-helpers.js';

const complete = (pass: Pass): Condition | undefined =>
  pass.status.conditions?.find((c) => c.type === 'Complete');

/** Passes until the rollout rests, every agent answering at once. */
function settleAll(start: Pass, fleet: Fleet, from: number): Pass {
  let pass = start;
  for (let t = from; t < from + 40 && pass.status.phase !== 'Complete'; t++) {
    fleet.settle(at(t));
    pass = reconcile(pass.lp, fleet, at(t));
  }
  return pass;
}

/** The boot a node's agent reports from (LivePatchNode status.bootID). */
function reportsFrom(fleet: Fleet, name: string, bootID: string): void {
  const current = fleet.get(name);
  fleet.lpns.set(name, { ...current, status: { ...current.status, bootID } });
}

function darken(fleet: Fleet, name: string): void {
  fleet.gone.add(name);
  fleet.nodes = fleet.nodes.map((n) => (n.name === name ? { ...n, ready: false } : n));
}

describe('a targeted node that cannot be reached', () => {
  test('without the patch, it keeps the LivePatch from Complete and is named; deleting its Node lets it complete', () => {
    const fleet = Fleet.of(4, T0);
    const dark = nth(order(fleet), 3);
    darken(fleet, dark);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet, {
      maxPasses: 20,
    });
    const last = nth(sim.passes, sim.passes.length - 1);
    expect(last.status).toMatchObject({ phase: 'Progressing', summary: '3/4' });
    expect(last.status.nodes).toMatchObject({ targeted: 4, patched: 3, unknown: 1 });
    expect(complete(last)).toMatchObject({ status: 'False', reason: 'NodesUnreachable' });
    expect(complete(last)?.message).toContain(`${dark} (the node is not Ready)`);
    expect(complete(last)?.message).toContain('delete its Node object');
    const warned = sim.passes
      .flatMap((p) => p.events)
      .filter((e) => e.reason === 'NodesUnreachable');
    expect(warned).toHaveLength(1);
    expect(warned[0]?.message).toContain(dark);

    fleet.nodes = fleet.nodes.filter((n) => n.name !== dark);
    const pass = reconcile(sim.lp, fleet, sim.now);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '3/3' });
    expect(pass.status.nodes).toMatchObject({ targeted: 3, unknown: 0 });
  });

  test('when it comes back, it is patched in turn and the LivePatch completes with it counted', () => {
    const fleet = Fleet.of(3, T0);
    const dark = nth(order(fleet), 0);
    darken(fleet, dark);
    let pass = settleAll(reconcile(livePatch(), fleet, at(0)), fleet, 1);
    expect(pass.plan.reason).toBe('NodesUnreachable');
    fleet.gone.delete(dark);
    fleet.nodes = fleet.nodes.map((n) => ({ ...n, ready: true }));
    fleet.beat(at(50));
    pass = reconcile(pass.lp, fleet, at(50));
    expect(pass.plan.started).toEqual([dark]);
    pass = settleAll(pass, fleet, 51);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '3/3' });
  });

  test('one whose agent last reported the patch running counts as running it: Complete, and the message says so', () => {
    const { fleet, lp, now } = completed(3);
    darken(fleet, 'node-02');
    const pass = reconcile(lp, fleet, now + 120_000);
    expect(pass.status.phase).toBe('Complete');
    expect(pass.status.nodes).toMatchObject({ targeted: 3, patched: 2, unknown: 1 });
    expect(complete(pass)?.message).toContain(
      '1 unreachable (each last reported the patch running)',
    );
  });

  test('an agent silent for longer than the window keeps it from Complete like a NotReady node', () => {
    const fleet = Fleet.of(3, T0);
    fleet.gone.add('node-03');
    fleet.lpns.set('node-03', lpn('node-03', { heartbeat: at(0) }));
    const pass = settleAll(reconcile(livePatch(), fleet, at(91)), fleet, 92);
    expect(pass.status.phase).toBe('Progressing');
    expect(complete(pass)?.message).toMatch(/node-03 \(its agent last reported \d+s ago\)/);
  });

  test('NotReady nodes count as targeted in maxUnavailable and step percentages', () => {
    const fleet = Fleet.of(10, T0);
    for (const n of order(fleet).slice(8)) darken(fleet, n);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: '50%' } } });
    expect(reconcile(lp, fleet, at(0)).plan).toMatchObject({ maxUnavailable: 5 });

    const stepped = Fleet.of(10, T0);
    for (const n of order(stepped).slice(8)) darken(stepped, n);
    const steps = [{ percent: 60 }, { pause: {} }];
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 10, steps } } }), stepped, {
      maxPasses: 10,
    });
    expect(sim.lp.status).toMatchObject({ phase: 'Paused', summary: '6/10', currentStep: 1 });
  });
});

describe('a node that joins after the rollout completed', () => {
  test('is patched without anyone acting, within maxUnavailable, and the LivePatch is Complete again with it counted', () => {
    const { fleet, lp, now } = completed(3);
    const joiners = ['node-90', 'node-91', 'node-92'];
    for (const j of joiners) {
      fleet.nodes = [...fleet.nodes, node(j)];
      fleet.lpns.set(j, lpn(j, { heartbeat: now }));
    }
    let pass = reconcile(lp, fleet, now);
    expect(pass.status.phase).toBe('Progressing');
    expect(pass.plan.started).toHaveLength(2);
    expect(inFlight(pass.lp, fleet, now)).toHaveLength(2);
    pass = settleAll(pass, fleet, (now - T0) / 1000 + 1);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '6/6' });
    expect(pass.events.map((e) => e.reason)).toContain('Completed');
  });
});

describe('a node that reboots', () => {
  test('into the same kernel: re-patching holds a rollout slot, so a joining node waits for it', () => {
    const fleet = Fleet.of(3, T0);
    const start = simulate(livePatch({ spec: { rollout: { maxUnavailable: 1 } } }), fleet);
    const now = start.now;
    const rebooted = 'node-02';
    fleet.report(rebooted, observed('Loading', { message: 'the node rebooted' }), now);
    fleet.nodes = [...fleet.nodes, node('node-90')];
    fleet.lpns.set('node-90', lpn('node-90', { heartbeat: now }));
    let pass = reconcile(start.lp, fleet, now);
    expect(pass.status.nodes).toMatchObject({ transitioning: 1, pending: 1 });
    expect(pass.plan).toMatchObject({ reason: 'NodesInFlight', started: [] });
    fleet.settle(now + 1000);
    pass = reconcile(pass.lp, fleet, now + 1000);
    expect(pass.plan.started).toEqual(['node-90']);
  });

  test('into the same kernel: it waits for a slot in its turn (maxUnavailable holds), is counted once, and its entry names the new boot', () => {
    const fleet = Fleet.of(4, T0, { bootID: 'boot-1' });
    for (const n of fleet.nodes) reportsFrom(fleet, n.name, 'boot-1');
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 1 } } });
    const start = simulate(lp, fleet);
    expect(fleet.desired('node-02')?.bootID).toBe('boot-1');
    const now = start.now;
    const [first, second] = ['node-02', 'node-03'];
    fleet.nodes = fleet.nodes.map((n) =>
      n.name === first || n.name === second ? { ...n, bootID: 'boot-2' } : n,
    );
    let pass = reconcile(start.lp, fleet, now);
    expect(pass.status).toMatchObject({ phase: 'Progressing', summary: '2/4' });
    expect(pass.status.nodes).toMatchObject({ targeted: 4, patched: 2, pending: 2 });
    expect(pass.plan.started).toHaveLength(1);
    const restarted = nth(pass.plan.started, 0);
    expect(fleet.desired(restarted)?.bootID).toBe('boot-2');
    const other = restarted === first ? second : first;
    expect(fleet.desired(other)?.bootID).toBe('boot-1');
    // Its agent has not reported from the new boot yet: the Patched report is the old boot's, it holds its slot.
    pass = reconcile(pass.lp, fleet, now + 1000);
    expect(pass.plan.started).toEqual([]);
    expect(pass.status.nodes).toMatchObject({ patched: 2, transitioning: 1, pending: 1 });
    reportsFrom(fleet, restarted, 'boot-2');
    fleet.report(restarted, observed('Loading'), now + 1000);
    pass = reconcile(pass.lp, fleet, now + 1000);
    expect(pass.plan).toMatchObject({ reason: 'NodesInFlight', started: [] });
    fleet.settle(now + 2000);
    pass = reconcile(pass.lp, fleet, now + 2000);
    expect(pass.plan.started).toEqual([other]);
    reportsFrom(fleet, other, 'boot-2');
    expect(fleet.desired(other)?.bootID).toBe('boot-2');
    pass = settleAll(pass, fleet, (now - T0) / 1000 + 3);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('into a release without a build: notApplicable, no longer targeted, Complete', () => {
    const { fleet, lp, now } = completed(3);
    fleet.nodes = fleet.nodes.map((n) => (n.name === 'node-01' ? { ...n, kernel: K27 } : n));
    const pass = reconcile(lp, fleet, now);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '2/2' });
    expect(pass.status.nodes).toMatchObject({ targeted: 2, notApplicable: 1 });
  });

  test("into a release with its own build: its entry takes that release's module", () => {
    const { fleet, lp, now } = completed(3);
    const both: LivePatch = {
      ...lp,
      spec: { ...lp.spec, kernels: [...lp.spec.kernels, { release: K27, module: module('k27') }] },
    };
    fleet.nodes = fleet.nodes.map((n) => (n.name === 'node-01' ? { ...n, kernel: K27 } : n));
    reconcile(both, fleet, now);
    expect(fleet.desired('node-01')?.module).toEqual(module('k27'));
  });
});
