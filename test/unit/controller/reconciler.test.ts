// The reconciler's writes, request by request, against a fake API server:
// what it must not do when a write fails or its cache lags.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FINALIZER } from '../../../src/api/constants.js';
import type { LivePatch, LivePatchNode } from '../../../src/api/generated/types.js';
import { PATHS, type NodeObject, type PodObject } from '../../../src/kube/resources.js';
import { DEFAULT_LIVENESS_WINDOWS } from '../../../src/controller/liveness.js';
import { createLogger } from '../../../src/log.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { Reconciler, type ReconcilerDeps } from '../../../src/controller/reconciler.js';
import { DEFAULT_RETRY } from '../../../src/controller/notification-outbox.js';
import { Notifier } from '../../../src/controller/notifier.js';
import { Webhook } from '../../../src/controller/webhook.js';
import { startReceiver, type Receiver } from '../../support/webhook-receiver.js';
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

async function reconciler(notifications?: ReconcilerDeps['notifications']): Promise<Reconciler> {
  return new Reconciler({
    kc: await api.start(),
    ...caches,
    events,
    metrics: new ControllerMetrics('livepatch-controller'),
    isLeader: () => true,
    agentPods: new MapCache<PodObject>(),
    agentNamespace: 'livepatch',
    livenessWindows: DEFAULT_LIVENESS_WINDOWS,
    log: createLogger({ component: 'test', level: 'error', format: 'text' }),
    ...(notifications ? { notifications } : {}),
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
    await r.reconcile(LP);
    // Held back, the deletion says so once per node, not "Disabled" on every retry.
    const about = (): string[] =>
      events.recorded.map((e) => e.event.reason).filter((why) => why !== 'NodeEntryNotWritten');
    expect(about()).toEqual([]);

    api.failing.clear();
    await r.reconcile(LP);
    expect(entriesOf(nodeName(2))).toEqual([]);
    expect(api.livePatches.get(LP)?.metadata.finalizers).toEqual([]);
    expect(about().length).toBeGreaterThan(0);
  });
});

/** An entry a user or a removed LivePatch left behind: no such LivePatch on the server. */
const ghost = entry({ livePatch: 'ghost' as never, patchName: 'livepatch_ghost' as never });

describe('entries of LivePatches missing from the cache', () => {
  /** Created a moment ago: on the server, not yet in this replica's cache (its watch lags). */
  const fresh = livePatch({ name: 'just-created', spec: { patchName: 'livepatch_new' as never } });
  const freshEntry = entry({
    livePatch: 'just-created' as never,
    patchName: 'livepatch_new' as never,
  });

  test('go with another LivePatch write only once the API server says the LivePatch does not exist', async () => {
    const lp = withMetadata(livePatch(), {
      finalizers: [FINALIZER],
      deletionTimestamp: new Date(),
    });
    store(
      [lp],
      [
        lpn(nodeName(1), {
          desired: [freshEntry, ghost, entry({ state: 'Disabled' })],
          observed: [observed('Unpatched')],
          heartbeat: Date.now(),
        }),
      ],
    );
    api.livePatches.set('just-created', fresh);
    await (await reconciler()).reconcile(LP);
    expect(entriesOf(nodeName(1))).toEqual(['just-created']);
    expect(events.recorded.filter((e) => e.event.reason === 'EntryRemoved')).toEqual([
      expect.objectContaining({ target: expect.objectContaining({ name: 'ghost' }) }),
    ]);
  });

  test('a reconcile of a LivePatch the cache lacks but the API server has removes nothing', async () => {
    store([], [lpn(nodeName(1), { desired: [freshEntry], heartbeat: Date.now() })]);
    api.livePatches.set('just-created', fresh);
    expect(await (await reconciler()).reconcile('just-created')).toEqual({});
    expect(entriesOf(nodeName(1))).toEqual(['just-created']);
    expect(api.sent('PATCH', PATHS.livePatchNodes)).toEqual([]);
    expect(events.recorded).toEqual([]);
  });
});

describe('a LivePatch gone with entries on a whole fleet (its finalizer removed by hand)', () => {
  const NODES = 40;
  const fleet = Array.from({ length: NODES }, (_, i) =>
    lpn(nodeName(i + 1), { desired: [ghost], heartbeat: Date.now() }),
  );

  test('its entries go several at a time, summed up in one Event', async () => {
    store([], fleet);
    api.latencyMs = 50;
    await (await reconciler()).reconcile('ghost');
    for (const n of fleet) expect(entriesOf(n.metadata.name ?? '')).toEqual([]);
    expect(api.maxInFlight).toBeGreaterThan(1);
    expect(api.maxInFlight).toBeLessThanOrEqual(8);
    expect(events.recorded).toHaveLength(1);
    expect(events.recorded[0]?.target).toMatchObject({ kind: 'LivePatch', name: 'ghost' });
    expect(events.recorded[0]?.event.message).toMatch(
      /^spec\.patches of 40 nodes \(node-01, node-02, node-03, node-04, node-05 and 35 more\) had an entry for LivePatch ghost, which does not exist/,
    );
  });

  test('a node whose entry cannot be removed is retried soon; the others go', async () => {
    store([], fleet);
    api.failing.add(nodeName(3));
    const result = await (await reconciler()).reconcile('ghost');
    expect(result.requeueAfterMs).toBeLessThanOrEqual(5000);
    expect(entriesOf(nodeName(3))).toEqual(['ghost']);
    expect(entriesOf(nodeName(4))).toEqual([]);
    expect(events.recorded[0]?.event.message).toContain(`of ${NODES - 1} nodes`);
  });
});

describe('webhook notifications', () => {
  let receiver: Receiver;
  let dir: string;
  beforeEach(async () => {
    receiver = await startReceiver('s3cr3t');
    dir = await mkdtemp(join(tmpdir(), 'notify-'));
    await writeFile(join(dir, 'url'), receiver.url);
  });
  afterEach(async () => {
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a decision is sent only once the status recording it is written, then moved to done', async () => {
    const lp = withMetadata(livePatch(), { finalizers: [FINALIZER], uid: 'uid-1' });
    store(
      [lp],
      [1, 2].map((i) => lpn(nodeName(i), { heartbeat: Date.now() })),
    );
    let wake: () => void = () => undefined;
    const notifier = new Notifier(
      new Webhook({ urlFile: join(dir, 'url'), format: 'json', timeoutMs: 2000 }),
      () => {
        wake();
      },
    );
    const r = await reconciler({ notifier, retry: DEFAULT_RETRY });

    api.failing.add(LP);
    await expect(r.reconcile(LP)).rejects.toThrow(/etcdserver/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received).toEqual([]);

    // The node entries went out before the failed status write: this pass starts nothing, and still announces the start.
    api.failing.delete(LP);
    const woken = new Promise<void>((resolve) => (wake = resolve));
    await r.reconcile(LP);
    expect(api.livePatches.get(LP)?.status?.notifications).toEqual({
      pending: [expect.objectContaining({ id: 'uid-1/1/Started', tries: 0 })],
      done: [],
    });
    await woken;
    expect(receiver.received.map((got) => got.body['id'])).toEqual(['uid-1/1/Started']);
    await r.reconcile(LP);
    expect(api.livePatches.get(LP)?.status?.notifications).toEqual({
      pending: [],
      done: ['uid-1/1/Started'],
    });
    await r.reconcile(LP);
    expect(receiver.received).toHaveLength(1);
  });
});

describe('status writes', () => {
  test('a field gone from a nested status object goes from the stored status too, and the status is then left alone', async () => {
    const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
    const tomorrow = DAYS[(new Date().getUTCDay() + 1) % 7] as 'monday';
    const lp = withMetadata(
      livePatch({
        spec: {
          rollout: {
            window: { days: [tomorrow], startTime: '00:00', endTime: '01:00', timeZone: 'UTC' },
          },
        },
        status: {
          observedGeneration: 1,
          phase: 'Progressing',
          // What an open window wrote: closesAt, which a closed window does not have.
          window: {
            open: true,
            closesAt: '2026-01-01T01:00:00Z',
            nextOpen: '2026-01-08T00:00:00Z',
          },
        },
      }),
      { finalizers: [FINALIZER] },
    );
    store(
      [lp],
      [1, 2].map((i) => lpn(nodeName(i), { heartbeat: Date.now() })),
    );
    const r = await reconciler();
    await r.reconcile(LP);
    const window = api.livePatches.get(LP)?.status?.window;
    expect(window?.open).toBe(false);
    expect(window).not.toHaveProperty('closesAt');
    const writes = api.sent('PATCH', `${PATHS.livePatches}/${LP}/status`).length;
    await r.reconcile(LP);
    expect(api.sent('PATCH', `${PATHS.livePatches}/${LP}/status`)).toHaveLength(writes);
  });
});
