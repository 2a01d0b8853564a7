// Unpatching (unpatch-nodes.ts): Disabled and deletion, maxUnavailable at a
// time, and nodes that cannot unpatch or whose agent is away.
import { describe, expect, test } from '@jest/globals';
import { deleted, edit, observed, reconcile, simulate } from './fixtures.js';
import { completed, names, nth, phases, withEntry } from './plan-helpers.js';

describe('disabling and deleting', () => {
  test('state Disabled unpatches every node, maxUnavailable at a time: Disabling, then Disabled', () => {
    const { fleet, lp, now } = completed(5);
    const sim = simulate(edit(lp, { state: 'Disabled' }), fleet, { now });
    expect(phases(sim.passes)).toEqual(['Disabling', 'Disabled']);
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    expect(names(fleet).map((n) => fleet.observed(n)?.phase)).toEqual(
      names(fleet).map(() => 'Unpatched'),
    );
    expect(sim.lp.status?.nodes).toMatchObject({ patched: 0, reverted: 5 });
    expect(sim.passes.flatMap((p) => p.events.map((e) => e.reason))).toEqual([
      'Disabling',
      'Disabled',
    ]);
  });

  test('deletion unpatches every node, then releases the finalizer and removes every entry', () => {
    const { fleet, lp, now } = completed(4);
    const sim = simulate(deleted(lp, now), fleet, { now });
    expect(phases(sim.passes)).toEqual(['Disabling', 'Disabled']);
    const releasing = sim.passes.filter((p) => p.plan.releaseFinalizer);
    expect(sim.passes[0]?.plan.releaseFinalizer).toBe(false);
    expect(releasing.length).toBeGreaterThan(0);
    expect([...(releasing[0]?.plan.writes.entries() ?? [])].sort()).toEqual(
      names(fleet).map((n) => [n, null]),
    );
    expect(withEntry(fleet)).toEqual([]);
  });

  test('a node whose agent is gone does not hold up deletion', () => {
    const { fleet, lp, now } = completed(4);
    const lost = nth(names(fleet), 0);
    fleet.gone.add(lost);
    const later = now + 120_000;
    const sim = simulate(deleted(lp, later), fleet, { now: later });
    const released = sim.passes.find((p) => p.plan.releaseFinalizer);
    expect(released?.plan.writes.get(lost)).toBeNull();
    expect(fleet.desired(lost)).toBeUndefined();
  });
});

describe('a node that cannot unpatch', () => {
  test('a disable that stalled with the patch still enabled fails the LivePatch and keeps the finalizer', () => {
    const { fleet, lp, now } = completed(3);
    const stuck = nth(names(fleet), 0);
    let pass = reconcile(deleted(lp, now), fleet, now);
    fleet.report(
      stuck,
      observed('Stalled', {
        observedGeneration: fleet.desired(stuck)?.generation ?? 1,
        enabled: true,
        message: 'disable stalled (blocked by qemu-kvm[812])',
      }),
      now + 1000,
    );
    for (let t = 2; t < 12; t++) {
      fleet.settle(now + t * 1000);
      fleet.beat(now + t * 1000);
      pass = reconcile(pass.lp, fleet, now + t * 1000);
    }
    expect(pass.plan).toMatchObject({
      phase: 'Failed',
      reason: 'UnpatchFailed',
      releaseFinalizer: false,
    });
    expect(pass.plan.message).toContain(`${stuck} (disable stalled (blocked by qemu-kvm[812]))`);
    expect(pass.plan.message).toContain('remove the finalizer');
    expect(fleet.desired(stuck)).toBeDefined();
  });

  test('a node whose agent is away gets its Disabled entry at once, to act on when it returns', () => {
    const { fleet, lp, now } = completed(3);
    const away = nth(names(fleet), 1);
    fleet.gone.add(away);
    const later = now + 120_000;
    fleet.beat(later);
    reconcile(edit(lp, { state: 'Disabled' }), fleet, later);
    expect(fleet.desired(away)?.state).toBe('Disabled');
  });
});
