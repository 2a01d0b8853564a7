// The alert gate's pure rules (alert-gate.ts) and the planner acting on them:
// which alerts match, that only firing ones hold, that one naming a baking
// node fails it, and that a source that cannot be read holds as well.
import { describe, expect, test } from '@jest/globals';
import type { AlertGateSpec } from '../../../src/api/generated/types.js';
import {
  gateSelector,
  judgeGate,
  parseDefaultGate,
  STALE_INTERVALS,
  type Alert,
  type AlertReading,
  type AlertSourceView,
} from '../../../src/controller/alert-gate.js';
import { alertsUrl, parseAlerts } from '../../../src/controller/alert-source.js';
import { at, deleted, edit, Fleet, livePatch, reconcile, T0, type Pass } from './fixtures.js';
import { nth, order } from './plan-helpers.js';

const INTERVAL = 15_000;
const gate = (o: Partial<AlertGateSpec> = {}): AlertGateSpec => ({
  enabled: true,
  nodeLabels: ['node', 'instance'],
  ...o,
});
const firing = (labels: Record<string, string>): Alert => ({ labels, state: 'firing' });
const pending = (labels: Record<string, string>): Alert => ({ labels, state: 'pending' });
const source = (reading: AlertReading, defaultGate?: AlertGateSpec): AlertSourceView => ({
  kind: 'source',
  intervalMs: INTERVAL,
  reading,
  ...(defaultGate ? { defaultGate } : {}),
});
const alertsAt = (now: number, ...alerts: Alert[]): AlertSourceView =>
  source({ kind: 'alerts', alerts, at: now });
const gated = (g: Partial<AlertGateSpec> = {}, bakeTime = '0s') =>
  livePatch({ spec: { rollout: { maxUnavailable: 1, bakeTime, alertGate: gate(g) } } });
const anyNode = (): boolean => false;

function selects(g: Partial<AlertGateSpec>, labels: Record<string, string>): boolean {
  const select = gateSelector(gate(g));
  if (typeof select === 'string') throw new Error(select);
  return select(labels);
}

describe('which alerts a gate selects', () => {
  test('matchLabels: every label, exactly', () => {
    const g = { matchLabels: { severity: 'critical', team: 'infra' } };
    expect(selects(g, { alertname: 'A', severity: 'critical', team: 'infra' })).toBe(true);
    expect(selects(g, { alertname: 'A', severity: 'critical' })).toBe(false);
    expect(selects(g, { severity: 'critical-ish', team: 'infra' })).toBe(false);
  });

  test('matchers: =, !=, =~ and !~, regexes anchored at both ends as in PromQL', () => {
    const g = { matchers: ['severity=~"critical|page"', 'alertname!="Watchdog"'] };
    expect(selects(g, { alertname: 'NodeDown', severity: 'page' })).toBe(true);
    expect(selects(g, { alertname: 'NodeDown', severity: 'criticality' })).toBe(false);
    expect(selects(g, { alertname: 'Watchdog', severity: 'critical' })).toBe(false);
    expect(selects({ matchers: ['alertname!~"Kube.*"'] }, { alertname: 'KubePodCrash' })).toBe(
      false,
    );
    expect(selects({ matchers: ['alertname!~"Kube.*"'] }, { alertname: 'NodeDown' })).toBe(true);
  });

  test('a label the alert lacks reads as empty, as in PromQL', () => {
    expect(selects({ matchers: ['team=""'] }, { alertname: 'A' })).toBe(true);
    expect(selects({ matchers: ['team!=""'] }, { alertname: 'A' })).toBe(false);
  });

  test('an empty gate selects every alert', () => {
    expect(selects({}, { alertname: 'Anything' })).toBe(true);
  });

  test('a matcher that does not parse, or a regex that does not compile, is named', () => {
    expect(gateSelector(gate({ matchers: ['severity=critical'] }))).toMatch(
      /"severity=critical" is not a matcher/,
    );
    expect(gateSelector(gate({ matchers: ['alertname=~"(unclosed"'] }))).toMatch(
      /alertname=~"\(unclosed"/,
    );
  });
});

describe("the gate's verdict", () => {
  const lp = gated({ matchLabels: { severity: 'critical' } });

  test('only firing alerts hold: a pending one has not held its for: yet', () => {
    const clear = judgeGate(
      lp,
      alertsAt(T0, pending({ alertname: 'A', severity: 'critical' })),
      anyNode,
      T0,
    );
    expect(clear).toMatchObject({ kind: 'open', status: { state: 'Clear', firing: 0 } });
    const held = judgeGate(
      lp,
      alertsAt(T0, firing({ alertname: 'A', severity: 'critical' })),
      anyNode,
      T0,
    );
    expect(held).toMatchObject({
      kind: 'hold',
      reason: 'AlertsFiring',
      status: { state: 'Firing', firing: 1, alerts: [{ name: 'A' }] },
    });
    expect(held?.kind === 'hold' && held.message).toContain('1 matching alert(s) firing: A');
  });

  test('firing alerts the selector leaves out hold nothing', () => {
    const v = judgeGate(
      lp,
      alertsAt(T0, firing({ alertname: 'B', severity: 'info' })),
      anyNode,
      T0,
    );
    expect(v?.kind).toBe('open');
  });

  test('status lists at most ten alerts and counts all of them', () => {
    const many = Array.from({ length: 25 }, (_, i) =>
      firing({ alertname: `A${String(i).padStart(2, '0')}`, severity: 'critical' }),
    );
    const v = judgeGate(lp, alertsAt(T0, ...many), anyNode, T0);
    expect(v?.status.alerts).toHaveLength(10);
    expect(v?.status.firing).toBe(25);
  });

  test('a LivePatch without a gate is not gated; enabled: false turns even the default off', () => {
    const reading = alertsAt(T0, firing({ alertname: 'A' }));
    expect(judgeGate(livePatch(), reading, anyNode, T0)).toBeUndefined();
    const byDefault = source(
      { kind: 'alerts', alerts: [firing({ alertname: 'A' })], at: T0 },
      gate(),
    );
    expect(judgeGate(livePatch(), byDefault, anyNode, T0)?.kind).toBe('hold');
    expect(judgeGate(gated({ enabled: false }), byDefault, anyNode, T0)).toBeUndefined();
  });

  test("a LivePatch's own gate replaces the chart's default", () => {
    const reading = source(
      { kind: 'alerts', alerts: [firing({ alertname: 'A', severity: 'info' })], at: T0 },
      gate(),
    );
    expect(judgeGate(lp, reading, anyNode, T0)?.kind).toBe('open');
  });

  test('a gate asked of a controller without a source holds: AlertGateNotConfigured', () => {
    const v = judgeGate(lp, { kind: 'none' }, anyNode, T0);
    expect(v).toMatchObject({
      kind: 'hold',
      reason: 'AlertGateNotConfigured',
      status: { state: 'NotConfigured' },
    });
    expect(v?.kind === 'hold' && v.message).toContain('--alert-source-url');
  });

  test("the chart's default gate without a source holds every LivePatch it gates, and says so", () => {
    const v = judgeGate(livePatch(), { kind: 'none', defaultGate: gate() }, anyNode, T0);
    expect(v).toMatchObject({ kind: 'hold', reason: 'AlertGateNotConfigured' });
    expect(v?.kind === 'hold' && v.message).toContain(
      "the chart's default gate (alertGate.default)",
    );
  });

  test('an unreachable source holds, with its error and since when', () => {
    const v = judgeGate(
      lp,
      source({
        kind: 'failed',
        error: 'connect ECONNREFUSED 127.0.0.1:9090',
        since: T0,
        lastGood: T0 - 60_000,
      }),
      anyNode,
      at(30),
    );
    expect(v).toMatchObject({
      kind: 'hold',
      reason: 'AlertSourceUnreachable',
      status: { state: 'Unreachable' },
    });
    expect(v?.status.message).toContain('ECONNREFUSED');
    expect(v?.status.message).toContain(new Date(T0).toISOString());
  });

  test('no answer yet holds as unreachable: the gate never proceeds blind', () => {
    const v = judgeGate(lp, source({ kind: 'notAsked' }), anyNode, T0);
    expect(v).toMatchObject({ kind: 'hold', reason: 'AlertSourceUnreachable' });
  });

  test(`an answer older than ${STALE_INTERVALS} intervals counts as unreachable`, () => {
    const reading = alertsAt(T0);
    expect(judgeGate(lp, reading, anyNode, T0 + STALE_INTERVALS * INTERVAL)?.kind).toBe('open');
    const stale = judgeGate(lp, reading, anyNode, T0 + STALE_INTERVALS * INTERVAL + 1);
    expect(stale).toMatchObject({ kind: 'hold', reason: 'AlertSourceUnreachable' });
    expect(stale?.status.checkedAt).toBe(new Date(T0).toISOString());
  });

  test('a node label names a node by its name, or its name and a port', () => {
    const nodes = new Set(['node-01', 'node-02']);
    const v = judgeGate(
      gated(),
      alertsAt(
        T0,
        firing({ alertname: 'NodeDown', node: 'node-01' }),
        firing({ alertname: 'HighLoad', instance: 'node-02:9100' }),
        firing({ alertname: 'Elsewhere', instance: 'db-1:9100' }),
      ),
      (n) => nodes.has(n),
      T0,
    );
    expect(v?.kind === 'hold' && Object.fromEntries(v.byNode)).toEqual({
      'node-01': ['NodeDown'],
      'node-02': ['HighLoad'],
    });
    expect(v?.status.alerts).toContainEqual({ name: 'NodeDown', node: 'node-01' });
  });

  test('nodeLabels chooses which labels name a node', () => {
    const v = judgeGate(
      gated({ nodeLabels: ['hostname'] }),
      alertsAt(
        T0,
        firing({ alertname: 'A', node: 'node-01' }),
        firing({ alertname: 'B', hostname: 'node-02' }),
      ),
      (n) => n === 'node-01' || n === 'node-02',
      T0,
    );
    expect(v?.kind === 'hold' && [...v.byNode.keys()]).toEqual(['node-02']);
  });

  test('a disabled or deleted LivePatch is never held', () => {
    const reading = alertsAt(T0, firing({ alertname: 'A', severity: 'critical' }));
    expect(judgeGate(edit(lp, { state: 'Disabled' }), reading, anyNode, T0)).toBeUndefined();
    const deleting = deleted(lp, T0);
    expect(judgeGate(deleting, reading, anyNode, T0)).toBeUndefined();
  });
});

describe('the rollout under the gate', () => {
  const critical = firing({ alertname: 'DiskFull', severity: 'critical' });

  test('a firing alert holds the first start: Waiting, AlertsFiring; when it clears the rollout goes on to Complete', () => {
    const fleet = Fleet.of(3, T0);
    let pass = reconcile(gated(), fleet, at(0), alertsAt(at(0), critical));
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'AlertsFiring', started: [] });
    expect(pass.status.alertGate).toMatchObject({
      state: 'Firing',
      alerts: [{ name: 'DiskFull' }],
    });
    expect(pass.events).toContainEqual(
      expect.objectContaining({ type: 'Normal', reason: 'AlertsFiring' }),
    );
    expect(pass.status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Reconciling', status: 'True', reason: 'AlertsFiring' }),
    );
    pass = reconcile(pass.lp, fleet, at(15), alertsAt(at(15)));
    expect(pass.plan.started).toEqual([nth(order(fleet), 0)]);
    for (let t = 16; pass.plan.phase !== 'Complete' && t < 40; t++) {
      fleet.settle(at(t));
      pass = reconcile(pass.lp, fleet, at(t), alertsAt(at(t)));
    }
    expect(pass.plan.phase).toBe('Complete');
    expect(pass.status.alertGate).toBeUndefined();
  });

  test('a node in flight finishes while the gate holds; only the next start waits (Progressing, NodesInFlight)', () => {
    const fleet = Fleet.of(3, T0);
    let pass = reconcile(gated({}, '1m'), fleet, at(0), alertsAt(at(0)));
    const first = nth(pass.plan.started, 0);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(6), alertsAt(at(6), critical));
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight', started: [] });
    expect(pass.plan.message).toContain('the alert gate holds the next start');
    // Its bake ends; the slot frees, but nothing starts while the alert fires.
    pass = reconcile(pass.lp, fleet, at(70), alertsAt(at(70), critical));
    expect(pass.plan).toMatchObject({ phase: 'Waiting', reason: 'AlertsFiring', started: [] });
    expect(pass.status.nodes?.patched).toBe(1);
    expect(fleet.observed(first)?.phase).toBe('Patched');
  });

  test("an alert naming a baking node fails that node's bake, counted against failureBudget", () => {
    const fleet = Fleet.of(3, T0);
    const lp = edit(gated({}, '5m'), { failureBudget: 1 });
    let pass = reconcile(lp, fleet, at(0), alertsAt(at(0)));
    const victim = nth(pass.plan.started, 0);
    fleet.settle(at(5));
    pass = reconcile(pass.lp, fleet, at(6), alertsAt(at(6)));
    expect(pass.slots.find((s) => s.node.name === victim)).toMatchObject({
      bake: { kind: 'baking' },
    });
    const nodeDown = firing({ alertname: 'NodeExporterDown', instance: `${victim}:9100` });
    pass = reconcile(pass.lp, fleet, at(20), alertsAt(at(20), nodeDown));
    expect(pass.status.unhealthyNodes).toEqual([
      expect.objectContaining({ node: victim, reason: 'AlertFiring' }),
    ]);
    expect(pass.status.unhealthyNodes?.[0]?.message).toContain('NodeExporterDown');
    expect(pass.status.nodes).toMatchObject({ failed: 1 });
    expect(pass.events).toContainEqual(expect.objectContaining({ reason: 'NodeUnhealthy' }));
    // Over the budget with a second one, Rollback fires: rollbacks are never held by the gate.
    const rolled = edit(gated({}, '5m'), { failureBudget: 0 });
    const f2 = Fleet.of(3, T0);
    let p2 = reconcile(rolled, f2, at(0), alertsAt(at(0)));
    const v2 = nth(p2.plan.started, 0);
    f2.settle(at(5));
    p2 = reconcile(p2.lp, f2, at(6), alertsAt(at(6)));
    const down = alertsAt(at(20), firing({ alertname: 'NodeDown', node: v2 }));
    p2 = reconcile(p2.lp, f2, at(20), down);
    expect(p2.plan.phase).toBe('RollingBack');
    expect(p2.plan.writes.get(v2)).toMatchObject({ state: 'Disabled' });
  });

  test('an alert naming a node that already finished its bake does not fail it', () => {
    const fleet = Fleet.of(3, T0);
    let pass = reconcile(gated({}, '10s'), fleet, at(0), alertsAt(at(0)));
    const first = nth(pass.plan.started, 0);
    fleet.settle(at(1));
    pass = reconcile(pass.lp, fleet, at(20), alertsAt(at(20)));
    expect(pass.slots.find((s) => s.node.name === first)).toMatchObject({
      bake: { kind: 'baked' },
    });
    const down = firing({ alertname: 'NodeDown', node: first });
    pass = reconcile(pass.lp, fleet, at(21), alertsAt(at(21), down));
    expect(pass.status.unhealthyNodes).toBeUndefined();
    expect(pass.status.nodes).toMatchObject({ patched: 1, failed: 0 });
    // It still holds the next start (any firing match does); the node started at 20 s goes on.
    expect(pass.plan).toMatchObject({ phase: 'Progressing', reason: 'NodesInFlight', started: [] });
    expect(pass.plan.message).toContain('the alert gate holds the next start: 1 matching alert(s)');
  });

  test('Prometheus unreachable: Waiting, AlertSourceUnreachable, the error in status', () => {
    const fleet = Fleet.of(2, T0);
    const down = source({ kind: 'failed', error: 'no answer within 5s', since: at(0) });
    const pass: Pass = reconcile(gated(), fleet, at(1), down);
    expect(pass.plan).toMatchObject({
      phase: 'Waiting',
      reason: 'AlertSourceUnreachable',
      started: [],
    });
    expect(pass.status.alertGate).toMatchObject({ state: 'Unreachable' });
    expect(pass.status.alertGate?.message).toContain('no answer within 5s');
  });

  test('a disabled LivePatch unpatches while the gate would hold', () => {
    const fleet = Fleet.of(2, T0);
    let pass = reconcile(gated(), fleet, at(0), alertsAt(at(0)));
    fleet.settle(at(1));
    pass = reconcile(edit(pass.lp, { state: 'Disabled' }), fleet, at(2), alertsAt(at(2), critical));
    expect(pass.plan.phase).toBe('Disabling');
    expect([...pass.plan.writes.values()]).toContainEqual(
      expect.objectContaining({ state: 'Disabled' }),
    );
  });
});

describe("the chart's default gate and the source's answer", () => {
  test('the default gate is read in the shape of spec.rollout.alertGate, with its defaults', () => {
    expect(parseDefaultGate('{"matchers":["severity=\\"critical\\""]}')).toEqual({
      enabled: true,
      matchLabels: {},
      matchers: ['severity="critical"'],
      nodeLabels: ['node', 'instance'],
    });
    expect(parseDefaultGate('{"matcher":[]}')).toMatch(/unknown field matcher/);
    expect(parseDefaultGate('{"matchers":["x"]}')).toMatch(/"x" is not a matcher/);
    expect(parseDefaultGate('[')).toMatch(/not JSON/);
  });

  test("Prometheus' /api/v1/alerts answer, and its error answer", () => {
    expect(
      parseAlerts({
        status: 'success',
        data: {
          alerts: [
            {
              labels: { alertname: 'A', node: 'n1' },
              annotations: {},
              state: 'firing',
              activeAt: '2026-01-15T12:00:00Z',
              value: '1e+00',
            },
          ],
        },
      }),
    ).toEqual([
      { labels: { alertname: 'A', node: 'n1' }, state: 'firing', activeAt: '2026-01-15T12:00:00Z' },
    ]);
    expect(
      parseAlerts({ status: 'error', errorType: 'unavailable', error: 'rules not loaded' }),
    ).toBe('the source answered status error: rules not loaded');
    expect(parseAlerts({ status: 'success', data: {} })).toMatch(/no data.alerts/);
  });

  test('the URL asked keeps a path prefix', () => {
    expect(alertsUrl('http://prom:9090').href).toBe('http://prom:9090/api/v1/alerts');
    expect(alertsUrl('http://mimir/prometheus').href).toBe('http://mimir/prometheus/api/v1/alerts');
  });
});
