// The nodes' desired entries (desired-entries.ts): written back when edited by
// hand, compared field by field.
import { describe, expect, test } from '@jest/globals';
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import type { NodeName, PatchName } from '../../../src/api/names.js';
import { sameEntry } from '../../../src/controller/desired-entries.js';
import { at, entry, Fleet, livePatch, LP, nodeName, reconcile, simulate, T0 } from './fixtures.js';
import { names, nth, stallingFleet } from './plan-helpers.js';

describe('a LivePatchNode entry edited by hand', () => {
  /** Rewrites one node's entry as a person with kubectl edit would. */
  function handEdit(fleet: Fleet, name: string, change: Partial<DesiredPatch>): void {
    const current = fleet.desired(name);
    if (!current) throw new Error(`no entry on ${name}`);
    fleet.apply(LP, new Map([[name as NodeName, { ...current, ...change }]]));
  }

  test.each<[string, Partial<DesiredPatch>]>([
    ['another module', { module: { url: 'https://evil.example/x.ko', sha256: 'e'.repeat(64) } }],
    ['force allowed', { allowForce: true }],
    ['another patchName', { patchName: 'livepatch_other' as PatchName }],
    ['a longer stall timeout', { stallTimeout: '24h' }],
    ['a made-up generation', { generation: 99 }],
  ])('%s: the controller writes the entry back on its next pass', (_what, change) => {
    const fleet = Fleet.of(3, T0);
    const pass = reconcile(livePatch(), fleet, at(0));
    const victim = nth(pass.plan.started, 0);
    const written = fleet.desired(victim);
    handEdit(fleet, victim, change);
    const next = reconcile(pass.lp, fleet, at(1));
    expect(next.plan.writes.get(victim)).toEqual(written);
    expect(fleet.desired(victim)).toEqual(written);
  });

  test('on a patched node too, and on a stalled one within its generation', () => {
    const fleet = Fleet.of(2, T0);
    fleet.stallOn.add(nodeName(2));
    const sim = simulate(
      livePatch({
        spec: { rollout: { maxUnavailable: 2 }, failureBudget: 1, stall: { action: 'Ignore' } },
      }),
      fleet,
    );
    for (const n of [nodeName(1), nodeName(2)]) {
      const written = fleet.desired(n);
      handEdit(fleet, n, { allowForce: true });
      reconcile(sim.lp, fleet, sim.now + 1);
      expect(fleet.desired(n)).toEqual(written);
    }
    expect(fleet.observed(nodeName(2))?.phase).toBe('Stalled');
  });

  test('a Disabled entry of a rollback is written back too', () => {
    const { fleet } = stallingFleet(4, 1);
    const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const n = nth(
      names(fleet).filter((x) => fleet.desired(x)?.state === 'Disabled'),
      0,
    );
    const written = fleet.desired(n);
    handEdit(fleet, n, { allowForce: true, stallTimeout: '24h' });
    reconcile(sim.lp, fleet, sim.now + 1);
    expect(fleet.desired(n)).toEqual(written);
  });
});

describe('sameEntry', () => {
  const configMap = { namespace: 'livepatch', name: 'modules', key: 'k26.ko' };
  const byConfigMap = entry({ module: { configMap, sha256: 'c'.repeat(64) } });

  test('entries equal in every field are the same, whatever order their fields came in', () => {
    const a = entry({ bakeTime: '5m' });
    const b = Object.fromEntries(Object.entries(a).reverse()) as unknown as DesiredPatch;
    expect(sameEntry(a, b)).toBe(true);
    expect(
      sameEntry(
        byConfigMap,
        entry({ module: { configMap: { ...configMap }, sha256: 'c'.repeat(64) } }),
      ),
    ).toBe(true);
  });

  test.each<[string, Partial<DesiredPatch>]>([
    ['livePatch', { livePatch: 'other' as DesiredPatch['livePatch'] }],
    ['patchName', { patchName: 'livepatch_other' as PatchName }],
    ['state', { state: 'Disabled' }],
    ['generation', { generation: 2 }],
    ['stallTimeout', { stallTimeout: '5m' }],
    ['allowForce', { allowForce: true }],
    ['bakeTime, set on one side only', { bakeTime: '10m' }],
    ['module.sha256', { module: { ...entry().module, sha256: 'f'.repeat(64) } }],
    ['module.url', { module: { ...entry().module, url: 'https://evil.example/x.ko' } }],
    ['module.hostPath', { module: { ...entry().module, hostPath: '/opt/k26.ko' } }],
  ])('an entry that differs in %s is not the same', (_field, change) => {
    expect(sameEntry(entry(), entry(change))).toBe(false);
    expect(sameEntry(entry(change), entry())).toBe(false);
  });

  test.each<[string, DesiredPatch['module']]>([
    ['namespace', { configMap: { ...configMap, namespace: 'other' }, sha256: 'c'.repeat(64) }],
    ['name', { configMap: { ...configMap, name: 'other' }, sha256: 'c'.repeat(64) }],
    ['key', { configMap: { ...configMap, key: 'other.ko' }, sha256: 'c'.repeat(64) }],
    ['presence', { sha256: 'c'.repeat(64) }],
  ])('a module ConfigMap that differs in %s is not the same', (_field, module) => {
    expect(sameEntry(byConfigMap, entry({ module }))).toBe(false);
    expect(sameEntry(entry({ module }), byConfigMap)).toBe(false);
  });
});
