// A fleet of 10,000 nodes, each with the longest node name and its own kernel
// release, where every node goes wrong at once: every list in the LivePatch
// status, every condition message and every Event stays within what the API
// server takes, whatever the fleet's size.
import { describe, expect, test } from '@jest/globals';
import type { LivePatchStatus } from '../../../src/api/generated/types.js';
import type { KernelRelease } from '../../../src/api/names.js';
import { taintLetters } from '../../../src/api/taint.js';
import {
  entry,
  Fleet,
  livePatch,
  lpn,
  module,
  node,
  observed,
  QEMU,
  reconcile,
  T0,
  type Pass,
} from './fixtures.js';

const NODES = 10_000;
const W = 1 << 9;
/** 253 characters, the longest a node name can be, unique per node. */
const longName = (i: number): string => `${String(i).padStart(5, '0')}.${'n'.repeat(247)}`;
const release = (i: number): KernelRelease => `6.1.0-${i}-amd64` as KernelRelease;
const LONG_MESSAGE = `checksum mismatch: ${'x'.repeat(1000)}`.slice(0, 1024);
const TEN_TASKS = Array.from({ length: 10 }, (_, i) => ({ pid: 1000 + i, comm: 'qemu-kvm-vcpu' }));

const lp = (spec = {}): ReturnType<typeof livePatch> =>
  livePatch({
    spec: {
      kernels: [{ releasePattern: '^6\\.1\\.0-', module: module('all') }],
      rollout: { maxUnavailable: '100%' },
      ...spec,
    },
  });

/** 10,000 nodes whose LivePatchNode each says what `report` gives. */
function fleetOf(report: (i: number) => Parameters<typeof lpn>[1] | undefined): Fleet {
  const fleet = new Fleet(
    Array.from({ length: NODES }, (_, i) => node(longName(i), { kernel: release(i) })),
    T0,
  );
  for (let i = 0; i < NODES; i++) {
    const o = report(i);
    if (o) fleet.lpns.set(longName(i), lpn(longName(i), { heartbeat: T0, ...o }));
  }
  return fleet;
}

const MAX_ITEMS: Record<string, number> = {
  kernels: 256,
  stalledNodes: 20,
  unhealthyNodes: 256,
  conditions: 16,
};

/** Everything the CRD bounds, and the whole status well under etcd's 1.5 MiB request limit. */
function expectBounded(pass: Pass): void {
  const status: LivePatchStatus = pass.status;
  for (const [list, max] of Object.entries(MAX_ITEMS)) {
    const items = (status as Record<string, unknown>)[list];
    expect(Array.isArray(items) ? items.length : 0).toBeLessThanOrEqual(max);
  }
  for (const s of status.stalledNodes ?? [])
    expect(s.blockingTasks?.length ?? 0).toBeLessThanOrEqual(10);
  // Well under the API's 32 KiB: a few names of 253 characters and the advice, never the fleet.
  for (const c of status.conditions ?? []) expect(c.message.length).toBeLessThanOrEqual(8192);
  for (const e of pass.events) expect(e.message.length).toBeLessThanOrEqual(8192);
  // One Event per newly listed stalled or unhealthy node, one for the step, one for the phase.
  expect(pass.events.length).toBeLessThanOrEqual(20 + 256 + 2);
  expect(Buffer.byteLength(JSON.stringify(status))).toBeLessThan(1024 * 1024);
}

describe('a status of 10,000 nodes stays bounded', () => {
  test('every node stalled, blocked by ten tasks, each on its own kernel release', () => {
    const fleet = fleetOf(() => ({
      desired: [entry()],
      observed: [
        observed('Stalled', {
          transitionStartTime: new Date(T0 - 61_000).toISOString(),
          pendingTasks: 400,
          blockingTasks: TEN_TASKS,
          message: LONG_MESSAGE,
        }),
      ],
    }));
    const pass = reconcile(lp({ failureBudget: NODES, stall: { action: 'Ignore' } }), fleet, T0);
    expect(pass.status.nodes?.stalled).toBe(NODES);
    expect(pass.status.stalledNodes).toHaveLength(20);
    expect(pass.status.kernels).toHaveLength(256);
    expectBounded(pass);
  });

  test('every node failed with the longest message an agent writes', () => {
    const fleet = fleetOf(() => ({
      desired: [entry()],
      observed: [observed('Failed', { message: LONG_MESSAGE })],
    }));
    const pass = reconcile(lp({ stall: { action: 'Halt' } }), fleet, T0);
    expect(pass.status.nodes?.failed).toBe(NODES);
    expectBounded(pass);
  });

  test('every node failed its bake with a new taint', () => {
    const fleet = fleetOf(() => ({
      desired: [entry()],
      observed: [
        observed('Patched', { patchedTime: new Date(T0).toISOString(), taintBeforeLoad: 0 }),
      ],
    }));
    for (const n of fleet.nodes) fleet.taint(n.name, W);
    const pass = reconcile(lp({ failureBudget: NODES }), fleet, T0);
    expect(pass.status.unhealthyNodes).toHaveLength(256);
    expect(pass.status.unhealthyNodes?.[0]?.taintAfter).toBe(taintLetters(W));
    expectBounded(pass);
  });

  test('every node silent mid-transition: the Progressing message names a few and counts the rest', () => {
    const fleet = fleetOf(() => ({
      desired: [entry()],
      observed: [observed('Transitioning')],
    }));
    for (const n of fleet.nodes) fleet.gone.add(n.name);
    const pass = reconcile(lp(), fleet, T0 + 10 * 60_000);
    const progressing = pass.status.conditions?.find((c) => c.type === 'Progressing');
    expect(progressing?.message).toContain(`and ${NODES - 5} more went silent mid-transition`);
    expectBounded(pass);
  });

  test('every node unable to unpatch: the Failed message names a few and counts the rest', () => {
    const fleet = fleetOf(() => ({
      desired: [entry({ state: 'Disabled', generation: 2 })],
      observed: [
        observed('Stalled', { observedGeneration: 2, enabled: true, message: LONG_MESSAGE }),
      ],
    }));
    const pass = reconcile(
      { ...lp({ state: 'Disabled' }), metadata: { name: 'cve-2024-1086', generation: 2 } },
      fleet,
      T0,
    );
    expect(pass.plan.reason).toBe('UnpatchFailed');
    expect(pass.plan.message).toContain(`and ${NODES - 5} more. Fix the node`);
    expectBounded(pass);
  });

  test('every node started at once: the StepStarted Event names the first ten', () => {
    const pass = reconcile(
      lp(),
      fleetOf(() => ({})),
      T0,
    );
    expect(pass.plan.started).toHaveLength(NODES);
    const started = pass.events.find((e) => e.reason === 'StepStarted');
    expect(started?.message).toContain(`and ${NODES - 10} more`);
    expectBounded(pass);
  });

  test('stalled nodes on one release: the blocking tasks of each are listed, at most ten', () => {
    const fleet = fleetOf((i) => ({
      desired: [entry()],
      observed: [
        observed('Stalled', {
          transitionStartTime: new Date(T0 - 61_000 + i).toISOString(),
          blockingTasks: i % 2 ? TEN_TASKS : [QEMU],
        }),
      ],
    }));
    expectBounded(reconcile(lp({ failureBudget: NODES }), fleet, T0));
  });
});
