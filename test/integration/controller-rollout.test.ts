// A rollout as a user runs it: kubectl apply, kubectl wait, kubectl get.
// The controller is a separate process; the fleet's agents report on their own.
import { describe, expect, test } from '@jest/globals';
import { freePort, httpGet } from '../support/http.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import {
  applyLivePatch,
  eventsFor,
  getLivePatch,
  IN_TRANSITION,
  nodeReports,
} from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const cluster = useOwnCluster({ nodes: 20, kernels: [KERNEL], prefix: 'wave' });

describe('a LivePatch rolled out by the controller', () => {
  test('20 nodes at 25%: never more than 5 in flight by the nodes’ own reports; kubectl wait returns', async () => {
    const metricsPort = await freePort();
    await cluster().startController('controller-a', metricsPort);
    // A node with another kernel: counted notApplicable, never failed.
    await kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'other-kernel' } }),
    );
    const nodeStatus = {
      status: {
        nodeInfo: { kernelVersion: '5.15.0-1-generic' },
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    };
    await kubectlOk([
      'patch',
      'node',
      'other-kernel',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(nodeStatus),
    ]);

    await applyLivePatch('fleet-wide', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: '25%' } },
    });
    let maxInFlight = 0;
    const sampling = { on: true };
    const sampler = (async () => {
      while (sampling.on) {
        const reports = await nodeReports('fleet-wide');
        const inFlight = [...reports.values()].filter(
          (r) => r && (IN_TRANSITION.has(r.phase) || r.transition === true),
        ).length;
        maxInFlight = Math.max(maxInFlight, inFlight);
      }
    })();
    const waited = await kubectl([
      'wait',
      '--for=condition=Complete',
      'lp/fleet-wide',
      '--timeout=120s',
    ]);
    sampling.on = false;
    await sampler;
    expect(waited.stderr).toBe('');
    expect(waited.stdout).toContain('condition met');
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(5);

    const lp = await getLivePatch('fleet-wide');
    expect(lp.status).toMatchObject({ phase: 'Complete', summary: '20/20', observedGeneration: 1 });
    expect(lp.status?.nodes).toMatchObject({
      targeted: 20,
      patched: 20,
      notApplicable: 1,
      stalled: 0,
      failed: 0,
    });
    expect(lp.status?.kernels).toEqual([{ release: KERNEL, targeted: 20, patched: 20 }]);
    const row = (await kubectlOk(['get', 'lp', 'fleet-wide', '--no-headers'])).trim().split(/\s+/);
    expect(row.slice(0, 4)).toEqual(['fleet-wide', 'Enabled', 'Complete', '20/20']);
    expect((await httpGet(metricsPort, '/readyz')).status).toBe(200);
    expect((await httpGet(metricsPort, '/healthz')).status).toBe(200);
    const metrics = (await httpGet(metricsPort, '/metrics')).body;
    expect(metrics).toContain('livepatch_controller_leader 1');
    expect(metrics).toContain('livepatch_nodes{livepatch="fleet-wide",state="patched"} 20');
    expect(metrics).toContain('livepatch_nodes{livepatch="fleet-wide",state="notApplicable"} 1');
    expect(metrics).toContain('livepatch_nodes_started_total{livepatch="fleet-wide"} 20');
    expect(metrics).toMatch(/livepatch_reconcile_duration_seconds_count \d+/);
    const steps = (await eventsFor('fleet-wide')).filter((e) => e.reason === 'StepStarted');
    expect(steps).toHaveLength(1);
    expect(steps[0]?.message).toContain('at most 5 at a time');
  });

  test('steps: a timed pause holds for its duration, an empty pause until spec.rollout.paused changes', async () => {
    const steps = [
      { nodes: 2 },
      { pause: { duration: '4s' } },
      { nodes: 4 },
      { pause: {} },
      { percent: 100 },
    ];
    await applyLivePatch('stepped', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2, steps } },
    });
    const atTimedPause = await waitUntil(
      'the timed pause',
      () => getLivePatch('stepped'),
      (lp) => lp.status?.phase === 'Paused' && lp.status.currentStep === 1,
    );
    expect(atTimedPause.status?.summary).toBe('2/20');
    const held = Date.now();
    const atEmptyPause = await waitUntil(
      'the empty pause',
      () => getLivePatch('stepped'),
      (lp) => lp.status?.phase === 'Paused' && lp.status.currentStep === 3,
      60_000,
    );
    expect(Date.now() - held).toBeGreaterThanOrEqual(3000);
    expect(atEmptyPause.status?.summary).toBe('4/20');
    await new Promise((r) => setTimeout(r, 3000));
    expect((await getLivePatch('stepped')).status).toMatchObject({
      phase: 'Paused',
      summary: '4/20',
    });
    expect(
      (await getLivePatch('stepped')).status?.conditions?.find((c) => c.type === 'Progressing')
        ?.message,
    ).toContain('until spec.rollout.paused is changed');

    expect(await kubectlOk(['livepatch', 'pause', 'stepped'])).toContain(
      'livepatch.livepatch.io/stepped paused',
    );
    await waitUntil(
      'paused by the user',
      () => getLivePatch('stepped'),
      (lp) => lp.status?.observedGeneration === 2 && lp.status.phase === 'Paused',
    );
    expect(await kubectlOk(['livepatch', 'resume', 'stepped'])).toContain('resumed');
    const waited = await kubectl([
      'wait',
      '--for=condition=Complete',
      'lp/stepped',
      '--timeout=120s',
    ]);
    expect(waited.stdout).toContain('condition met');
    expect((await eventsFor('stepped')).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['Paused', 'StepStarted', 'Completed']),
    );
  });

  test('Disabled unpatches every node; deleting waits for the nodes, then removes their entries', async () => {
    await kubectlOk([
      'patch',
      'lp',
      'fleet-wide',
      '--type=merge',
      '-p',
      '{"spec":{"state":"Disabled"}}',
    ]);
    await kubectlOk([
      'wait',
      '--for=jsonpath={.status.phase}=Disabled',
      'lp/fleet-wide',
      '--timeout=120s',
    ]);
    const reports = await nodeReports('fleet-wide');
    expect([...reports.values()].filter((r) => r?.phase === 'Unpatched')).toHaveLength(20);

    const deleting = await kubectl(['delete', 'lp', 'stepped', '--wait=false']);
    expect(deleting.code).toBe(0);
    const during = await getLivePatch('stepped');
    expect(during.metadata.deletionTimestamp).toBeDefined();
    expect(during.metadata.finalizers).toContain('livepatch.io/unpatch-nodes');
    await kubectlOk(['wait', '--for=delete', 'lp/stepped', '--timeout=120s']);
    const after = await nodeReports('stepped');
    expect([...after.values()].filter((r) => r !== undefined)).toHaveLength(0);
    const entries = await kubectlOk([
      'get',
      'lpn',
      '-o',
      'jsonpath={.items[*].spec.patches[*].livePatch}',
    ]);
    expect(entries).not.toContain('stepped');
  });
});
