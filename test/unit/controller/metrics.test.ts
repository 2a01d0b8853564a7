// What the controller's /metrics says, read as Prometheus reads it: the
// controller-runtime series dashboards expect, and a LivePatch's own series,
// which go when the LivePatch does.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { FINALIZER } from '../../../src/api/constants.js';
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { WorkQueue } from '../../../src/controller/queue.js';
import { Reconciler } from '../../../src/controller/reconciler.js';
import { rawJson } from '../../../src/kube/raw.js';
import { onApiRequest } from '../../../src/kube/requests.js';
import { PATHS, type NodeObject, type PodObject } from '../../../src/kube/resources.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../../../src/controller/liveness.js';
import { createLogger } from '../../../src/log.js';
import { waitUntil } from '../../../lab/wait.js';
import { FakeApi, FakeEvents, MapCache, readyNode } from './fake-api.js';
import { K26, livePatch, LP, lpn, nodeName, PATCH, withMetadata } from './fixtures.js';

const log = createLogger({ component: 'test', level: 'error', format: 'text' });

/** The sample lines of one metric, without HELP and TYPE. */
async function samples(metrics: ControllerMetrics, name: string): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('controller-runtime series', () => {
  test('reconcile results, errors, retries and the queue, under their controller-runtime names', async () => {
    const metrics = new ControllerMetrics('livepatch-controller');
    let calls = 0;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const queue = new WorkQueue(
      async (key) => {
        calls++;
        if (key === 'bad') throw new Error('no');
        if (key === 'slow') await held;
        return key === 'done' ? {} : { requeueAfterMs: 60_000 };
      },
      log,
      metrics,
    );
    metrics.watchQueue(queue);
    queue.add('done');
    queue.add('resync');
    queue.add('bad');
    queue.add('slow');
    queue.add('waiting');
    queue.start();
    await waitUntil(
      'four keys taken',
      () => Promise.resolve(calls),
      (n) => n >= 4,
      2000,
      10,
    );
    await new Promise((r) => setTimeout(r, 50));
    // "slow" is held by the worker; "waiting" waits behind it.
    expect(await samples(metrics, 'workqueue_depth')).toEqual([
      'workqueue_depth{controller="livepatch",name="livepatch"} 1',
    ]);
    const [longest] = await samples(metrics, 'workqueue_longest_running_processor_seconds');
    expect(Number(longest?.split(' ')[1])).toBeGreaterThanOrEqual(0.04);
    release();
    // Stopped before "bad" comes back from its backoff.
    await queue.stop();

    expect(await samples(metrics, 'controller_runtime_reconcile_total')).toEqual([
      'controller_runtime_reconcile_total{controller="livepatch",result="success"} 1',
      'controller_runtime_reconcile_total{controller="livepatch",result="error"} 1',
      'controller_runtime_reconcile_total{controller="livepatch",result="requeue_after"} 2',
    ]);
    expect(await samples(metrics, 'controller_runtime_reconcile_errors_total')).toEqual([
      'controller_runtime_reconcile_errors_total{controller="livepatch"} 1',
    ]);
    expect(await samples(metrics, 'workqueue_retries_total')).toEqual([
      'workqueue_retries_total{controller="livepatch",name="livepatch"} 1',
    ]);
    expect(await samples(metrics, 'workqueue_adds_total')).toEqual([
      'workqueue_adds_total{controller="livepatch",name="livepatch"} 5',
    ]);
    expect(await samples(metrics, 'workqueue_longest_running_processor_seconds')).toEqual([
      'workqueue_longest_running_processor_seconds{controller="livepatch",name="livepatch"} 0',
    ]);
  });

  test('leader_election_master_status names the Lease and follows the leadership', async () => {
    const metrics = new ControllerMetrics('my-lease');
    expect(await samples(metrics, 'leader_election_master_status')).toEqual([
      'leader_election_master_status{name="my-lease"} 0',
    ]);
    metrics.setLeader(true);
    expect(await samples(metrics, 'leader_election_master_status')).toEqual([
      'leader_election_master_status{name="my-lease"} 1',
    ]);
    expect(await samples(metrics, 'livepatch_controller_leader')).toEqual([
      'livepatch_controller_leader 1',
    ]);
  });
});

describe('rest_client_requests_total', () => {
  let api: FakeApi;
  beforeEach(() => {
    api = new FakeApi();
  });
  afterEach(() => api.stop());

  test('counts each request to the API server by code, method and host', async () => {
    const kc = await api.start();
    const metrics = new ControllerMetrics('livepatch-controller');
    const stop = onApiRequest((r) => {
      metrics.apiRequest(r);
    });
    api.livePatches.set(LP, livePatch());
    await rawJson(kc, 'GET', `${PATHS.livePatches}/${LP}`);
    await rawJson(kc, 'GET', `${PATHS.livePatches}/missing`).catch(() => 0);
    stop();
    await rawJson(kc, 'GET', `${PATHS.livePatches}/${LP}`);
    const host = new URL(kc.server).host;
    expect(await samples(metrics, 'rest_client_requests_total')).toEqual([
      `rest_client_requests_total{code="200",method="GET",host="${host}"} 1`,
      `rest_client_requests_total{code="404",method="GET",host="${host}"} 1`,
    ]);
  });
});

describe("a LivePatch's series", () => {
  test('livepatch_info carries the phase, and a new phase replaces the series', async () => {
    const metrics = new ControllerMetrics('livepatch-controller');
    metrics.observe(LP, PATCH, { phase: 'Progressing' }, 0.01);
    metrics.observe(LP, PATCH, { phase: 'Complete' }, 0.01);
    expect(await samples(metrics, 'livepatch_info')).toEqual([
      `livepatch_info{livepatch="${LP}",patch_name="${PATCH}",phase="Complete"} 1`,
    ]);
  });

  describe('through the reconciler', () => {
    let api: FakeApi;
    beforeEach(() => {
      api = new FakeApi();
    });
    afterEach(() => api.stop());

    test('go when the LivePatch is deleted; the others stay', async () => {
      const metrics = new ControllerMetrics('livepatch-controller');
      const caches = {
        livePatches: new MapCache<LivePatch>(),
        livePatchNodes: new MapCache<LivePatchNode>(),
        nodes: new MapCache<NodeObject>(),
      };
      const reconciler = new Reconciler({
        kc: await api.start(),
        ...caches,
        events: new FakeEvents(),
        metrics,
        isLeader: () => true,
        agentPods: new MapCache<PodObject>(),
        agentNamespace: 'livepatch',
        livenessWindows: DEFAULT_LIVENESS_WINDOWS,
        log,
      });
      for (const name of [LP, 'other']) {
        const lp = withMetadata(livePatch({ name }), { finalizers: [FINALIZER] });
        api.livePatches.set(name, lp);
        caches.livePatches.observe(lp);
      }
      const node = lpn(nodeName(1), { heartbeat: Date.now() });
      api.livePatchNodes.set(nodeName(1), node);
      caches.livePatchNodes.observe(node);
      caches.nodes.observe(readyNode(nodeName(1), K26));
      await reconciler.reconcile(LP);
      await reconciler.reconcile('other');
      const ofLp = async (): Promise<string[]> =>
        (await metrics.registry.metrics())
          .split('\n')
          .filter((l) => l.includes(`livepatch="${LP}"`));
      expect(await ofLp()).toContain(`livepatch_nodes{livepatch="${LP}",state="targeted"} 1`);
      expect((await ofLp()).some((l) => l.startsWith('livepatch_info{'))).toBe(true);
      expect(await samples(metrics, 'livepatch_agents')).toEqual([
        'livepatch_agents{state="reporting"} 1',
        'livepatch_agents{state="silent"} 0',
      ]);

      api.livePatches.delete(LP);
      caches.livePatches.objects.delete(LP);
      await reconciler.reconcile(LP);

      expect(await ofLp()).toEqual([]);
      const others = await samples(metrics, 'livepatch_info');
      expect(others).toHaveLength(1);
      expect(others[0]).toContain('livepatch="other"');
    });
  });
});
