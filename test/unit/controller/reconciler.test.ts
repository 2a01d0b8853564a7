// The reconciler's writes, request by request, against a fake API server:
// what it must not do when a write fails or its cache lags.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { FINALIZER } from '../../../src/api/constants.js';
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import type { NodeObject } from '../../../src/kube/resources.js';
import { createLogger } from '../../../src/log.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { Reconciler } from '../../../src/controller/reconciler.js';
import { FakeApi, FakeEvents, MapCache, readyNode } from './fake-api.js';
import { entry, K26, livePatch, LP, lpn, nodeName, observed, withMetadata } from './fixtures.js';

let api: FakeApi;
let events: FakeEvents;
let caches: {
  livePatches: MapCache<LivePatch>;
  livePatchNodes: MapCache<LivePatchNode>;
  nodes: MapCache<NodeObject>;
};

beforeEach(() => {
  api = new FakeApi();
  events = new FakeEvents();
  caches = { livePatches: new MapCache(), livePatchNodes: new MapCache(), nodes: new MapCache() };
});
afterEach(() => api.stop());

async function reconciler(): Promise<Reconciler> {
  return new Reconciler({
    kc: await api.start(),
    ...caches,
    events,
    metrics: new ControllerMetrics(),
    isLeader: () => true,
    log: createLogger({ component: 'test', level: 'error', format: 'text' }),
  });
}

/** The same objects on the server and in the caches. */
function store(lps: readonly LivePatch[], lpns: readonly LivePatchNode[]): void {
  for (const lp of lps) {
    api.livePatches.set(lp.metadata.name ?? '', lp);
    caches.livePatches.observe(lp);
  }
  for (const n of lpns) {
    api.livePatchNodes.set(n.metadata.name ?? '', n);
    caches.livePatchNodes.observe(n);
    caches.nodes.observe(readyNode(n.metadata.name ?? '', K26));
  }
}

const entriesOf = (node: string): string[] =>
  (api.livePatchNodes.get(node)?.spec.patches ?? []).map((p) => p.livePatch);

describe('deletion', () => {
  test('the finalizer stays while an entry could not be removed, and goes once every removal is written', async () => {
    const lp = withMetadata(livePatch(), {
      finalizers: [FINALIZER],
      deletionTimestamp: new Date(),
    });
    const unpatched = lpn(nodeName(1), {
      desired: [entry({ state: 'Disabled' })],
      observed: [observed('Unpatched')],
      heartbeat: Date.now(),
    });
    store([lp], [unpatched, { ...unpatched, metadata: { name: nodeName(2) } }]);
    api.failing.add(nodeName(2));
    const r = await reconciler();

    const first = await r.reconcile(LP);
    expect(entriesOf(nodeName(1))).toEqual([]);
    expect(entriesOf(nodeName(2))).toEqual([LP]);
    expect(api.livePatches.get(LP)?.metadata.finalizers).toEqual([FINALIZER]);
    expect(first.requeueAfterMs).toBeLessThanOrEqual(5000);

    api.failing.clear();
    await r.reconcile(LP);
    expect(entriesOf(nodeName(2))).toEqual([]);
    expect(api.livePatches.get(LP)?.metadata.finalizers).toEqual([]);
  });
});
