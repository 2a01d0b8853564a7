// A rollout under a maintenance window (enable-nodes.ts with
// maintenance-window.ts): no node starts outside it, joined or rebooted nodes
// included; a node in flight when it closes finishes and bakes; rollbacks and
// disables are never held; pauses come first. Whole simulated rollouts on an
// injected clock.
import { describe, expect, test } from '@jest/globals';
import type { MaintenanceWindow } from '../../../src/api/generated/types.js';
import {
  edit,
  Fleet,
  inFlight,
  livePatch,
  lpn,
  node,
  reconcile,
  type LivePatchInput,
  type Pass,
} from './fixtures.js';
import { nth, order } from './plan-helpers.js';

// Thursday 2026-01-15, 12:00 UTC is 13:00 in Europe/Berlin.
const NOON = Date.UTC(2026, 0, 15, 12, 0, 0);
const MIN = 60_000;
const t = (minutes: number): number => NOON + minutes * MIN;

/** 14:00-15:00 Berlin (13:00-14:00 UTC) on Thursdays: opens an hour after NOON. */
const THURSDAY: MaintenanceWindow = {
  days: ['thursday'],
  startTime: '14:00',
  endTime: '15:00',
  timeZone: 'Europe/Berlin',
};

const windowed = (
  rollout: NonNullable<LivePatchInput['spec']>['rollout'] = {},
  w: MaintenanceWindow = THURSDAY,
): ReturnType<typeof livePatch> =>
  livePatch({ spec: { rollout: { maxUnavailable: 2, window: w, ...rollout } } });

/** Passes every `step` minutes from `from` to `to`, every agent answering at once. */
function run(start: Pass, fleet: Fleet, from: number, to: number, step = 1): Pass {
  let pass = start;
  for (let m = from; m <= to; m += step) {
    fleet.settle(t(m));
    pass = reconcile(pass.lp, fleet, t(m));
  }
  return pass;
}

describe('no node starts outside the window', () => {
  test('closed: Waiting (OutsideWindow), no entry written, the next opening in status, the message and one Event; it starts nodes once open', () => {
    const fleet = Fleet.of(4, NOON);
    let pass = reconcile(windowed(), fleet, t(0));
    expect(pass.plan.started).toEqual([]);
    expect(pass.plan.writes.size).toBe(0);
    expect(pass.status.phase).toBe('Waiting');
    expect(pass.status.window).toEqual({ open: false, nextOpen: '2026-01-15T13:00:00Z' });
    const message =
      'outside the maintenance window (thursday 14:00-15:00 Europe/Berlin): 4 node(s) wait to start; ' +
      'it opens at 2026-01-15T13:00:00Z (Thu 2026-01-15 14:00 Europe/Berlin (UTC+01:00))';
    expect(pass.plan).toMatchObject({ reason: 'OutsideWindow', message });
    const reconciling = pass.status.conditions?.find((c) => c.type === 'Reconciling');
    expect(reconciling).toMatchObject({ status: 'True', reason: 'OutsideWindow', message });
    expect(pass.events).toEqual([{ type: 'Normal', reason: 'OutsideWindow', message }]);
    // Looked at again when it opens.
    expect(pass.plan.requeueAfterMs).toBe(60 * MIN);

    pass = reconcile(pass.lp, fleet, t(30));
    expect(pass.plan.started).toEqual([]);
    expect(pass.events).toEqual([]);

    pass = reconcile(pass.lp, fleet, t(60));
    expect(pass.plan.started).toEqual(order(fleet).slice(0, 2));
    expect(pass.status.phase).toBe('Progressing');
    expect(pass.status.window).toEqual({
      open: true,
      closesAt: '2026-01-15T14:00:00Z',
      nextOpen: '2026-01-22T13:00:00Z',
    });
    pass = run(pass, fleet, 61, 63);
    expect(pass.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('a node that joins or reboots after Complete waits for the window like any start', () => {
    const fleet = Fleet.of(3, NOON, { bootID: 'boot-1' });
    let pass = run(reconcile(windowed(), fleet, t(60)), fleet, 61, 63);
    expect(pass.status.phase).toBe('Complete');
    // 15:30 Berlin: closed again. One node joins, another reboots without the patch.
    const joined = node('node-99', { bootID: 'boot-1' });
    fleet.nodes = [...fleet.nodes, joined];
    fleet.lpns.set(joined.name, lpn(joined.name, { heartbeat: t(150) }));
    const rebooted =
      nth(order(fleet), 1) === joined.name ? nth(order(fleet), 0) : nth(order(fleet), 1);
    fleet.nodes = fleet.nodes.map((n) => (n.name === rebooted ? { ...n, bootID: 'boot-2' } : n));
    pass = reconcile(pass.lp, fleet, t(150));
    expect(pass.plan.started).toEqual([]);
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'OutsideWindow' });
    expect(pass.plan.message).toContain('2 node(s) wait to start');
    expect(pass.status.window?.nextOpen).toBe('2026-01-22T13:00:00Z');
    // A week later the window opens and both start.
    pass = reconcile(pass.lp, fleet, t(7 * 24 * 60 + 60));
    expect([...pass.plan.started].sort()).toEqual([joined.name, rebooted].sort());
    expect(fleet.desired(rebooted)?.bootID).toBe('boot-2');
  });
});

describe('the window closing mid-rollout', () => {
  test('a node in flight when it closes finishes and bakes; no other starts; then Waiting until the next opening', () => {
    const fleet = Fleet.of(4, NOON);
    const lp = windowed({ maxUnavailable: 1, bakeTime: '30m' });
    // 14:45 Berlin: open for 15 more minutes.
    let pass = reconcile(lp, fleet, t(105));
    const first = nth(pass.plan.started, 0);
    fleet.settle(t(106));
    pass = reconcile(pass.lp, fleet, t(106));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight' });
    // Closed at 15:00; the node bakes until 15:16.
    pass = reconcile(pass.lp, fleet, t(121));
    expect(pass.plan.started).toEqual([]);
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight' });
    expect(pass.plan.message).toBe(
      '0 node(s) in transition, 1 baking; the maintenance window is closed: the next node starts when it ' +
        'opens at 2026-01-22T13:00:00Z (Thu 2026-01-22 14:00 Europe/Berlin (UTC+01:00))',
    );
    expect(pass.status.window).toEqual({ open: false, nextOpen: '2026-01-22T13:00:00Z' });
    expect(inFlight(pass.lp, fleet, t(121))).toEqual([]);
    pass = run(pass, fleet, 122, 140);
    expect(fleet.observed(first)?.taintAfterBake).toBe(0);
    expect(pass.status.nodes).toMatchObject({ patched: 1, pending: 3 });
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'OutsideWindow', started: [] });
    expect(pass.plan.requeueAfterMs).toBe(t(7 * 24 * 60 + 60) - t(140));
  });

  test('a stall after the window closed still rolls back; Disabled unpatches outside it', () => {
    const fleet = Fleet.of(4, NOON);
    const lp = windowed({ maxUnavailable: 2 });
    let pass = reconcile(lp, fleet, t(119));
    const [stalls, fine] = [nth(pass.plan.started, 0), nth(pass.plan.started, 1)];
    fleet.settle(t(119), Infinity, undefined, new Set([stalls]));
    fleet.stallOn.add(stalls);
    fleet.settle(t(125));
    pass = reconcile(pass.lp, fleet, t(125));
    expect(pass.plan).toMatchObject({ phase: 'RollingBack' });
    expect(pass.plan.writes.get(fine)?.state).toBe('Disabled');
    expect(pass.status.window).toBeUndefined();

    const other = Fleet.of(2, NOON);
    let done = run(reconcile(windowed(), other, t(60)), other, 61, 62);
    expect(done.status.phase).toBe('Complete');
    done = reconcile(edit(done.lp, { state: 'Disabled' }), other, t(180));
    expect(done.plan).toMatchObject({ phase: 'Disabling' });
    expect([...done.plan.writes.values()].map((e) => e?.state)).toEqual(['Disabled', 'Disabled']);
  });
});

describe('what holds first', () => {
  test('spec.rollout.paused and a pause step are said before a closed window; a timed pause that ends outside it turns Waiting', () => {
    const fleet = Fleet.of(4, NOON);
    let pass = reconcile(windowed({ paused: true }), fleet, t(0));
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'Paused' });
    expect(pass.status.window).toEqual({ open: false, nextOpen: '2026-01-15T13:00:00Z' });

    const steps = [{ nodes: 1 }, { pause: { duration: '30m' } }];
    pass = reconcile(windowed({ steps }), fleet, t(110));
    expect(pass.plan.started).toHaveLength(1);
    pass = run(pass, fleet, 111, 112);
    expect(pass.plan).toMatchObject({ phase: 'Paused', reason: 'PauseStep' });
    // The pause ends at 15:22 Berlin, after the window closed at 15:00.
    pass = run(pass, fleet, 113, 143);
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'OutsideWindow' });
    expect(pass.plan.message).toContain('3 node(s) wait to start');
  });

  test('an unknown time zone: Waiting (InvalidWindow) before a pause, a Warning Event, nothing starts; fixing it rolls out', () => {
    const fleet = Fleet.of(3, NOON);
    const bad = { ...THURSDAY, timeZone: 'Europe/Berln' };
    let pass = reconcile(windowed({ paused: true }, bad), fleet, t(60));
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'InvalidWindow', started: [] });
    expect(pass.plan.writes.size).toBe(0);
    expect(pass.plan.message).toBe(
      'spec.rollout.window.timeZone "Europe/Berln" is not a time zone this controller knows: give an IANA ' +
        'name such as Europe/Berlin or America/New_York (or leave it out for UTC). No node starts until it ' +
        'is fixed; 0 node(s) in transition, 0 baking',
    );
    expect(pass.status.window).toBeUndefined();
    expect(pass.events).toEqual([
      { type: 'Warning', reason: 'InvalidWindow', message: pass.plan.message },
    ]);
    pass = reconcile(edit(pass.lp, { rollout: { paused: false, window: THURSDAY } }), fleet, t(61));
    expect(pass.plan.started).toHaveLength(2);
  });

  test('one Event per cause: waiting on, no repeat; a closed window edited into an unknown zone, a Warning', () => {
    const fleet = Fleet.of(2, NOON);
    let pass = reconcile(windowed(), fleet, t(0));
    expect(pass.events.map((e) => e.reason)).toEqual(['OutsideWindow']);
    pass = reconcile(pass.lp, fleet, t(1));
    expect(pass.events).toEqual([]);
    const bad = { ...THURSDAY, timeZone: 'Europe/Berln' };
    pass = reconcile(edit(pass.lp, { rollout: { window: bad } }), fleet, t(2));
    expect(pass.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'InvalidWindow']]);
  });
});
