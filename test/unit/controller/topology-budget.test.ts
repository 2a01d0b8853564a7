// Topology budgets (topology-budget.ts): a maxUnavailable per zone beside the
// global one, zone by zone in a stated or derived order, nodes without the
// zone label, a node joining a finished zone, steps over the whole fleet, as
// whole simulated rollouts: injected time, agents that answer like the real one.
import { describe, expect, test } from '@jest/globals';
import type { DesiredPatch, LivePatch, RolloutSpec } from '../../../src/api/generated/types.js';
import type { NodeName } from '../../../src/api/names.js';
import { zoneOrder } from '../../../src/controller/topology-budget.js';
import { entry, Fleet, livePatch, LP, lpn, node, reconcile, T0, type Pass } from './fixtures.js';

const ZONE = 'topology.kubernetes.io/zone';

/** Nodes a-1…a-N per zone (zone "" gets no label), in that order. */
function zonedFleet(sizes: Readonly<Record<string, number>>): Fleet {
  const nodes = Object.entries(sizes).flatMap(([zone, count]) =>
    Array.from({ length: count }, (_, i) =>
      node(`${zone || 'nozone'}-${i + 1}`, { labels: zone ? { [ZONE]: zone } : {} }),
    ),
  );
  return new Fleet(nodes, T0);
}

const zoneOfNode = (fleet: Fleet, name: string): string =>
  fleet.nodes.find((n) => n.name === name)?.labels[ZONE] ?? '';

/** Nodes in flight by their agents' reports: an entry not answered yet, or Patched and still baking. */
function occupied(fleet: Fleet): string[] {
  const pending = new Set(fleet.pending());
  return fleet.nodes
    .map((n) => n.name)
    .filter((n) => {
      const o = fleet.observed(n);
      return pending.has(n) || (o?.phase === 'Patched' && o.taintAfterBake === undefined);
    });
}

interface Rollout {
  readonly lp: LivePatch;
  readonly passes: Pass[];
  /** The most nodes in flight at once, per zone and in all. */
  readonly maxPerZone: Map<string, number>;
  readonly maxTotal: number;
  /** The zone of every node started, in the order they started. */
  readonly startedZones: string[];
  readonly now: number;
}

/** Reconciles until the rollout rests or `stop` says so; after each pass `perTick` agents answer, a second passes. */
function roll(
  start: LivePatch,
  fleet: Fleet,
  o: { perTick?: number; now?: number; stop?: (p: Pass) => boolean; maxPasses?: number } = {},
): Rollout {
  let lp = start;
  let now = o.now ?? T0;
  const passes: Pass[] = [];
  const maxPerZone = new Map<string, number>();
  let maxTotal = 0;
  for (let i = 0; i < (o.maxPasses ?? 300); i++) {
    const pass = reconcile(lp, fleet, now);
    passes.push(pass);
    lp = pass.lp;
    const flying = occupied(fleet);
    maxTotal = Math.max(maxTotal, flying.length);
    const perZone = new Map<string, number>();
    for (const n of flying)
      perZone.set(zoneOfNode(fleet, n), (perZone.get(zoneOfNode(fleet, n)) ?? 0) + 1);
    for (const [z, c] of perZone) maxPerZone.set(z, Math.max(maxPerZone.get(z) ?? 0, c));
    if (o.stop?.(pass)) break;
    const quiet = pass.plan.writes.size === 0 && fleet.pending().length === 0;
    if (['Complete', 'RolledBack', 'Failed', 'Paused'].includes(pass.plan.phase) && quiet) break;
    fleet.settle(now, o.perTick);
    now += 1000;
  }
  const startedZones = passes.flatMap((p) => p.plan.started.map((n) => zoneOfNode(fleet, n)));
  return { lp, passes, maxPerZone, maxTotal, startedZones, now };
}

/** The nodes each pass started, by name, passes that started none left out. */
const startsPerPass = (r: Rollout): string[][] =>
  r.passes.filter((p) => p.plan.started.length).map((p) => [...p.plan.started].sort());

/** Consecutive repeats folded: the zones in the order the rollout went through them. */
const runs = (zones: readonly string[]): string[] => zones.filter((z, i) => zones[i - 1] !== z);

const withTopology = (rollout: Partial<RolloutSpec>): LivePatch => livePatch({ spec: { rollout } });

describe('a budget per zone beside the global one', () => {
  test('per zone 1 under a global 6: at most one node in flight per zone, three in all, Complete', () => {
    const fleet = zonedFleet({ a: 4, b: 4, c: 4 });
    const r = roll(
      withTopology({
        maxUnavailable: 6,
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: 1 },
      }),
      fleet,
      { perTick: 2 },
    );
    expect(r.maxPerZone).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
        ['c', 1],
      ]),
    );
    expect(r.maxTotal).toBe(3);
    expect(r.lp.status).toMatchObject({ phase: 'Complete', summary: '12/12' });
    expect(r.lp.status?.topology).toEqual({
      key: ZONE,
      groups: 3,
      finished: 3,
      unlabeled: 0,
      zones: ['a', 'b', 'c'].map((zone) => ({ zone, targeted: 4, patched: 4, inFlight: 0 })),
    });
  });

  test('the global 2 under a per-zone 3: never more than two in flight, though one zone may hold both', () => {
    const fleet = zonedFleet({ a: 6, b: 6 });
    const r = roll(
      withTopology({
        maxUnavailable: 2,
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: 3 },
      }),
      fleet,
      { perTick: 1 },
    );
    expect(r.maxTotal).toBe(2);
    expect(Math.max(...r.maxPerZone.values())).toBe(2);
    expect(r.lp.status?.phase).toBe('Complete');
  });

  test('a percentage counts each zone on its own: 20% of 10 nodes is 2, of 3 nodes 1 (rounded up)', () => {
    const fleet = zonedFleet({ big: 10, small: 3 });
    const r = roll(
      withTopology({
        maxUnavailable: 10,
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: '20%' },
      }),
      fleet,
      { perTick: 1 },
    );
    expect(r.maxPerZone).toEqual(
      new Map([
        ['big', 2],
        ['small', 1],
      ]),
    );
    expect(r.lp.status?.phase).toBe('Complete');
  });

  test('baking nodes hold their zone’s slot until the bake is over', () => {
    const fleet = zonedFleet({ a: 3, b: 3 });
    const r = roll(
      withTopology({
        maxUnavailable: 4,
        bakeTime: '5s',
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: 1 },
      }),
      fleet,
    );
    expect(r.maxPerZone).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    expect(r.lp.status?.phase).toBe('Complete');
    // 3 nodes per zone one after another, each baking 5 s.
    expect(r.now - T0).toBeGreaterThanOrEqual(15_000);
  });

  test('a zone at its budget is named in the Progressing message while others may not start', () => {
    const fleet = zonedFleet({ a: 3 });
    const pass = reconcile(
      withTopology({
        maxUnavailable: 3,
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: 1 },
      }),
      fleet,
      T0,
    );
    expect(pass.plan.started).toHaveLength(1);
    const next = reconcile(pass.lp, fleet, T0 + 1000);
    expect(next.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight' });
    expect(next.plan.message).toContain(
      'the next start waits: zone a is at its budget: 1 node(s) in flight (spec.rollout.topology.maxUnavailable 1)',
    );
  });
});

describe('zone by zone', () => {
  test('stated order first, the zone left out after it, the nodes without the label last; each zone finished before the next starts', () => {
    const fleet = zonedFleet({ a: 3, b: 3, c: 3, '': 2 });
    const lp = withTopology({
      maxUnavailable: 5,
      topology: { key: ZONE, order: 'ZoneByZone', maxUnavailable: 2, zones: ['c', 'a'] },
    });
    const r = roll(lp, fleet, { perTick: 1 });
    expect(runs(r.startedZones)).toEqual(['c', 'a', 'b', '']);
    expect(r.maxPerZone).toEqual(
      new Map([
        ['c', 2],
        ['a', 2],
        ['b', 2],
        ['', 2],
      ]),
    );
    expect(r.maxTotal).toBe(2);
    expect(r.lp.status?.topology?.zones.map((z) => z.zone)).toEqual(['c', 'a', 'b', '']);
    expect(r.lp.status).toMatchObject({
      phase: 'Complete',
      topology: { unlabeled: 2, groups: 4, finished: 4 },
    });
  });

  test('a zone starts only once every node of the zone before it is patched and baked', () => {
    const fleet = zonedFleet({ a: 2, b: 2 });
    const lp = withTopology({
      maxUnavailable: 4,
      bakeTime: '3s',
      topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
    });
    let firstB: Pass | undefined;
    roll(lp, fleet, {
      stop: (p) => {
        if (!firstB && p.plan.started.some((n) => zoneOfNode(fleet, n) === 'b')) firstB = p;
        return false;
      },
    });
    const zoneA = firstB?.slots.filter((s) => s.node.labels[ZONE] === 'a');
    expect(zoneA).toHaveLength(2);
    for (const s of zoneA ?? [])
      expect(s).toMatchObject({ kind: 'target', progress: 'patched', bake: { kind: 'baked' } });
  });

  test('a zone held by the order is named in the Progressing message', () => {
    const fleet = zonedFleet({ a: 1, b: 1 });
    const lp = withTopology({
      topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
      maxUnavailable: 2,
    });
    const pass = reconcile(lp, fleet, T0);
    expect(pass.plan.started).toEqual(['a-1']);
    expect(pass.plan.message).toContain(
      'the next start waits: zone b waits for zone a to finish (ZoneByZone)',
    );
  });

  test('a zone ahead whose last node is busy with another patch holds the next zone: said, and looked at again soon', () => {
    const fleet = zonedFleet({ a: 1, b: 1 });
    const other = entry({
      livePatch: 'other' as DesiredPatch['livePatch'],
      patchName: 'other_patch' as DesiredPatch['patchName'],
    });
    fleet.apply('other', new Map([['a-1' as NodeName, other]]));
    const lp = withTopology({
      maxUnavailable: 2,
      topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
    });
    const pass = reconcile(lp, fleet, T0);
    expect(pass.plan).toMatchObject({
      reason: 'WaitingForNodes',
      started: [],
      requeueAfterMs: 5000,
    });
    expect(pass.plan.message).toContain('the next start waits: zone b waits for zone a to finish');
  });

  test('derived order: stable, salted with the LivePatch name, the nodes without the label last', () => {
    const fleet = zonedFleet({ east: 2, west: 2, north: 2, '': 1 });
    const lp = withTopology({ maxUnavailable: 4, topology: { key: ZONE, order: 'ZoneByZone' } });
    const r = roll(lp, fleet, { perTick: 1 });
    expect(r.maxTotal).toBe(2);
    const zones = runs(r.startedZones);
    expect(zones).toHaveLength(4);
    expect(zones.at(-1)).toBe('');
    expect(zones).toEqual(zoneOrder(LP, ['west', '', 'north', 'east']));
    expect(r.lp.status?.topology?.zones.map((z) => z.zone)).toEqual(zones);
    // Another LivePatch rolls the same zones in its own order, the same every time.
    const orders = new Set(
      ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'].map((name) =>
        zoneOrder(name, ['east', 'west', 'north']).join(','),
      ),
    );
    expect(orders.size).toBeGreaterThan(1);
    expect(zoneOrder('p1', ['north', 'east', 'west'])).toEqual(
      zoneOrder('p1', ['west', 'north', 'east']),
    );
  });

  test('"" in the stated order places the nodes without the label', () => {
    expect(zoneOrder(LP, ['a', '', 'b'], ['', 'b'])).toEqual(['', 'b', 'a']);
  });

  test('a stall within failureBudget settles its zone: the next zone starts and the rollout completes', () => {
    const fleet = zonedFleet({ a: 2, b: 2 });
    fleet.stallOn.add('a-1');
    const lp = livePatch({
      spec: {
        failureBudget: 1,
        rollout: {
          maxUnavailable: 4,
          topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
        },
      },
    });
    const r = roll(lp, fleet);
    expect(startsPerPass(r)).toEqual([
      ['a-1', 'a-2'],
      ['b-1', 'b-2'],
    ]);
    expect(r.lp.status).toMatchObject({ phase: 'Complete', nodes: { stalled: 1, patched: 3 } });
  });

  test('over failureBudget, stall.action acts as always: Rollback before the next zone starts', () => {
    const fleet = zonedFleet({ a: 2, b: 2 });
    fleet.stallOn.add('a-1');
    const lp = withTopology({
      maxUnavailable: 4,
      topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
    });
    const r = roll(lp, fleet);
    expect(runs(r.startedZones)).toEqual(['a']);
    expect(r.lp.status?.phase).toBe('RolledBack');
  });

  test('a node that cannot be reached and never started does not hold its zone; the rollout waits for it at the end', () => {
    const fleet = zonedFleet({ a: 2, b: 2 });
    fleet.gone.add('a-2');
    const lp = withTopology({
      maxUnavailable: 4,
      topology: { key: ZONE, order: 'ZoneByZone', zones: ['a', 'b'] },
    });
    const r = roll(lp, fleet, {
      now: T0 + 200_000,
      stop: (p) => p.plan.reason === 'NodesUnreachable',
    });
    expect(startsPerPass(r)).toEqual([['a-1'], ['b-1', 'b-2']]);
    expect(r.lp.status?.conditions?.find((c) => c.type === 'Complete')).toMatchObject({
      status: 'False',
      reason: 'NodesUnreachable',
    });
  });

  test('a node that joins a finished zone starts at once, beside the zone in progress; the zone after waits for both', () => {
    const fleet = zonedFleet({ a: 2, b: 3, c: 2 });
    const lp = withTopology({
      maxUnavailable: 3,
      topology: { key: ZONE, order: 'ZoneByZone', maxUnavailable: 1, zones: ['a', 'b', 'c'] },
    });
    // Zone a is done and zone b under way.
    const first = roll(lp, fleet, {
      stop: (p) => p.plan.started.some((n) => zoneOfNode(fleet, n) === 'b'),
    });
    const joiner = node('a-3', { labels: { [ZONE]: 'a' } });
    fleet.nodes.push(joiner);
    fleet.lpns.set(joiner.name, lpn(joiner.name, { heartbeat: first.now }));
    const rest = roll(first.lp, fleet, { now: first.now + 1000 });
    expect(rest.startedZones[0]).toBe('a');
    const cStarts = rest.passes.findIndex((p) =>
      p.plan.started.some((n) => zoneOfNode(fleet, n) === 'c'),
    );
    const joinerDone = rest.passes.findIndex((p) =>
      p.slots.some(
        (s) => s.node.name === joiner.name && s.kind === 'target' && s.progress === 'patched',
      ),
    );
    expect(joinerDone).toBeGreaterThanOrEqual(0);
    expect(cStarts).toBeGreaterThan(joinerDone);
    expect(runs(rest.startedZones)).toEqual(['a', 'b', 'c']);
    expect(rest.lp.status).toMatchObject({ phase: 'Complete', summary: '8/8' });
  });
});

describe('steps', () => {
  test('a step counts the whole fleet, not each zone: 50% of 12 is 6, zone a’s 4 and 2 of zone b, then the pause holds', () => {
    const fleet = zonedFleet({ a: 4, b: 4, c: 4 });
    const lp = withTopology({
      maxUnavailable: 3,
      steps: [{ percent: 50 }, { pause: {} }],
      topology: { key: ZONE, order: 'ZoneByZone', maxUnavailable: 2, zones: ['a', 'b', 'c'] },
    });
    const r = roll(lp, fleet, { perTick: 1 });
    expect(r.lp.status).toMatchObject({ phase: 'Paused', summary: '6/12', currentStep: 1 });
    expect(r.lp.status?.topology?.zones).toEqual([
      { zone: 'a', targeted: 4, patched: 4, inFlight: 0 },
      { zone: 'b', targeted: 4, patched: 2, inFlight: 0 },
      { zone: 'c', targeted: 4, patched: 0, inFlight: 0 },
    ]);
  });

  test('under Parallel, a step of 3 nodes patches 3 in all, one per zone at a time', () => {
    const fleet = zonedFleet({ a: 4, b: 4, c: 4 });
    const lp = withTopology({
      maxUnavailable: 6,
      steps: [{ nodes: 3 }, { pause: {} }],
      topology: { key: ZONE, order: 'Parallel', maxUnavailable: 1 },
    });
    const r = roll(lp, fleet, { perTick: 1 });
    expect(r.lp.status).toMatchObject({ phase: 'Paused', summary: '3/12' });
    expect(Math.max(...r.maxPerZone.values())).toBe(1);
  });
});

describe('status.topology', () => {
  test('absent without spec.rollout.topology', () => {
    const fleet = zonedFleet({ a: 2 });
    const pass = reconcile(livePatch(), fleet, T0);
    expect(pass.status.topology).toBeUndefined();
  });

  test('the nodes without the label are one group, listed as "" and counted', () => {
    const fleet = zonedFleet({ a: 2, '': 3 });
    const pass = reconcile(
      withTopology({ maxUnavailable: 1, topology: { key: ZONE, order: 'Parallel' } }),
      fleet,
      T0,
    );
    expect(pass.status.topology).toMatchObject({ groups: 2, finished: 0, unlabeled: 3 });
    expect(pass.status.topology?.zones.at(-1)).toMatchObject({ zone: '', targeted: 3 });
  });

  test('a node whose label is empty counts with the nodes without it', () => {
    const fleet = new Fleet([node('x', { labels: { [ZONE]: '' } }), node('y')], T0);
    const pass = reconcile(
      withTopology({ maxUnavailable: 1, topology: { key: ZONE, order: 'Parallel' } }),
      fleet,
      T0,
    );
    expect(pass.status.topology).toMatchObject({
      groups: 1,
      unlabeled: 2,
      zones: [{ zone: '', targeted: 2 }],
    });
  });

  test('a thousand zones: 64 listed, those in flight among them, every group counted', () => {
    const sizes = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [`z${String(i).padStart(4, '0')}`, 1]),
    );
    const fleet = zonedFleet(sizes);
    const pass = reconcile(
      withTopology({
        maxUnavailable: 5,
        topology: { key: ZONE, order: 'Parallel', maxUnavailable: 1 },
      }),
      fleet,
      T0,
    );
    const topology = pass.status.topology;
    expect(topology?.groups).toBe(1000);
    expect(topology?.zones).toHaveLength(64);
    const started = pass.plan.started.map((n) => zoneOfNode(fleet, n));
    // Listed before the refresh of this pass's writes, so none is in flight yet: the next pass lists them.
    const next = reconcile(pass.lp, fleet, T0 + 1000);
    const flying = next.status.topology?.zones.filter((z) => z.inFlight > 0).map((z) => z.zone);
    expect(flying?.sort()).toEqual(started.sort());
  });
});
