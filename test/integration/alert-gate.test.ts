// The alert gate against a real Prometheus (built from the pinned module that
// gives promtool) and the real API server: the test serves a metric that
// Prometheus scrapes every second, and its rules fire and clear with it. While
// an alert fires no node starts; when it clears the rollout completes; an
// alert naming a baking node fails that node; a stopped Prometheus holds.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { LivePatch } from '../../src/api/generated/types.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { createLogger } from '../../src/log.js';
import { startPrometheus, type PrometheusServer } from '../../lab/readers/prometheus-server.js';
import { waitUntil } from '../../lab/wait.js';
import type { Running } from '../../lab/operator-process.js';
import { kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const NODES = 4;
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'gate' });
const log = createLogger({ component: 'test', level: 'error', format: 'text' });

// MaintenanceBlocker and NodeDown follow the metrics the test serves; SlowBurn
// is pending for an hour (never firing) and Noise fires without the gate's severity.
const RULES = `groups:
  - name: gate
    rules:
      - alert: MaintenanceBlocker
        expr: gate_blocker > 0
        for: 0s
        labels: { severity: critical }
      - alert: NodeDown
        expr: gate_node_down > 0
        for: 0s
        labels: { severity: critical }
      - alert: SlowBurn
        expr: vector(1)
        for: 1h
        labels: { severity: critical }
      - alert: Noise
        expr: vector(1)
        labels: { severity: info }
`;

/** The metrics the test serves Prometheus: a blocker, and per node a down flag. */
const metrics = { blocker: 0, nodeDown: new Map<string, number>() };
let target: Server;
let prometheus: PrometheusServer;
let controller: Running;

interface PromAlert {
  readonly labels: Record<string, string>;
  readonly state: string;
}

async function promAlerts(): Promise<PromAlert[]> {
  const res = await fetch(`${prometheus.url}/api/v1/alerts`);
  const body = (await res.json()) as { data: { alerts: PromAlert[] } };
  return body.data.alerts;
}

const stateOf = (alerts: readonly PromAlert[], name: string): string | undefined =>
  alerts.find((a) => a.labels['alertname'] === name)?.state;

beforeAll(async () => {
  target = createServer((_req, res) => {
    const lines = [`gate_blocker ${metrics.blocker}`];
    for (const [node, v] of metrics.nodeDown) lines.push(`gate_node_down{node="${node}"} ${v}`);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`${lines.join('\n')}\n`);
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const address = target.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const started = Date.now();
  prometheus = await startPrometheus({ target: `127.0.0.1:${port}`, rules: RULES, log });
  log.info('prometheus ready', { seconds: (Date.now() - started) / 1000 });
}, 900_000);

afterAll(async () => {
  await prometheus.close();
  await new Promise((resolve) => target.close(resolve));
});

function waitFor(name: string, what: string, ok: (lp: LivePatch) => boolean): Promise<LivePatch> {
  return waitUntil(`${name}: ${what}`, () => getLivePatch(name), ok, 60_000);
}

const reconciling = (lp: LivePatch): string | undefined =>
  lp.status?.conditions?.find((c) => c.type === 'Reconciling')?.reason;

/** Nodes that have an entry of this LivePatch: the controller started them. */
async function started(livePatch: string): Promise<string[]> {
  const list = await kubectlJson<{
    items: { metadata: { name: string }; spec: { patches?: { livePatch: string }[] } }[];
  }>(['get', 'lpn']);
  return list.items
    .filter((n) => n.spec.patches?.some((p) => p.livePatch === livePatch))
    .map((n) => n.metadata.name);
}

const gate = { matchLabels: { severity: 'critical' }, matchers: ['alertname!="Watchdog"'] };

describe('the alert gate on a real Prometheus', () => {
  test('while a matching alert fires no node starts (Waiting, AlertsFiring); when it clears the rollout completes', async () => {
    // Firing before the controller starts: its first reading already holds (until it has one, it holds too).
    metrics.blocker = 1;
    // Prometheus itself: the blocker fires, SlowBurn is only pending, Noise fires unselected.
    await waitUntil(
      'Prometheus to fire MaintenanceBlocker',
      promAlerts,
      (a) =>
        stateOf(a, 'MaintenanceBlocker') === 'firing' &&
        stateOf(a, 'SlowBurn') === 'pending' &&
        stateOf(a, 'Noise') === 'firing',
      30_000,
    );
    controller = await cluster().startController('gate-controller', 0, [
      `--alert-source-url=${prometheus.url}`,
      '--alert-source-interval=1s',
      '--alert-source-timeout=1s',
    ]);
    await applyLivePatch('held', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2, alertGate: gate } },
    });
    const held = await waitFor(
      'held',
      'Waiting on AlertsFiring',
      (lp) => lp.status?.phase === 'Waiting',
    );
    expect(reconciling(held)).toBe('AlertsFiring');
    expect(held.status?.alertGate).toMatchObject({
      state: 'Firing',
      firing: 1,
      alerts: [expect.objectContaining({ name: 'MaintenanceBlocker' })],
    });
    expect(held.status?.alertGate?.message).toContain('MaintenanceBlocker');
    // Pending SlowBurn and unselected Noise hold nothing and are not listed.
    expect(held.status?.alertGate?.message).not.toMatch(/SlowBurn|Noise/);
    // Held, not just slow: a few polls later still no node has an entry.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await started('held')).toEqual([]);
    expect((await getLivePatch('held')).status?.phase).toBe('Waiting');
    const page = await kubectlOk(['livepatch', 'status', 'held']);
    expect(page).toContain('alert gate: Firing: 1 matching alert(s) firing: MaintenanceBlocker');
    const events = await eventsFor('held');
    expect(events).toContainEqual(expect.objectContaining({ reason: 'AlertsFiring' }));

    metrics.blocker = 0;
    const done = await waitFor('held', 'Complete', (lp) => lp.status?.phase === 'Complete');
    expect(done.status).toMatchObject({ summary: `${NODES}/${NODES}` });
    expect(done.status?.alertGate).toBeUndefined();
    expect(await started('held')).toHaveLength(NODES);
  });

  test('an alert that names a baking node fails its bake (AlertFiring), counted against failureBudget', async () => {
    metrics.blocker = 0; // whatever the test before left
    const first = rolloutOrder('baking', cluster().fleet.nodes)[0] ?? '';
    await applyLivePatch('baking', {
      kernel: KERNEL,
      spec: {
        rollout: { maxUnavailable: 1, bakeTime: '5m', alertGate: gate },
        stall: { action: 'Halt' },
        failureBudget: 0,
      },
    });
    await waitUntil(
      `${first} to be Patched and baking`,
      () => nodeReports('baking'),
      (r) => r.get(first)?.phase === 'Patched',
      60_000,
    );
    metrics.nodeDown.set(first, 1);
    const failed = await waitFor('baking', 'Failed', (lp) => lp.status?.phase === 'Failed');
    expect(failed.status?.unhealthyNodes).toEqual([
      expect.objectContaining({ node: first, reason: 'AlertFiring' }),
    ]);
    expect(failed.status?.unhealthyNodes?.[0]?.message).toContain(
      `alert NodeDown fired for node ${first}`,
    );
    expect(failed.status?.nodes).toMatchObject({ failed: 1 });
    // Halt: no other node started.
    expect(await started('baking')).toEqual([first]);
    metrics.nodeDown.set(first, 0);
  });

  test('Prometheus stopped: the rollout holds with AlertSourceUnreachable and the error; a controller without a source says AlertGateNotConfigured', async () => {
    await prometheus.stop();
    await applyLivePatch('blind', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2, alertGate: gate } },
    });
    const blind = await waitFor(
      'blind',
      'Waiting, unreachable',
      (lp) => reconciling(lp) === 'AlertSourceUnreachable',
    );
    expect(blind.status?.phase).toBe('Waiting');
    expect(blind.status?.alertGate?.state).toBe('Unreachable');
    expect(blind.status?.alertGate?.message).toMatch(/the alert source fails since .*ECONNREFUSED/);
    expect(await started('blind')).toEqual([]);

    await controller.stop();
    await cluster().startController('gate-controller-without-source');
    const unconfigured = await waitFor(
      'blind',
      'AlertGateNotConfigured',
      (lp) => reconciling(lp) === 'AlertGateNotConfigured',
    );
    expect(unconfigured.status).toMatchObject({
      phase: 'Waiting',
      alertGate: { state: 'NotConfigured' },
    });
    expect(unconfigured.status?.alertGate?.message).toContain('--alert-source-url');
    expect(await started('blind')).toEqual([]);
  });

  test('the API server refuses a matcher Prometheus would not read, naming the field', async () => {
    const manifest = {
      apiVersion: 'livepatch.io/v1alpha1',
      kind: 'LivePatch',
      metadata: { name: 'bad-matcher' },
      spec: {
        patchName: 'livepatch_bad_matcher',
        kernels: [{ release: KERNEL, module: { hostPath: '/x.ko', sha256: 'a'.repeat(64) } }],
        rollout: { alertGate: { matchers: ['severity=critical'] } },
      },
    };
    const r = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.rollout.alertGate.matchers[0]');
  });
});
