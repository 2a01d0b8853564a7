// The reflector against an API server on loopback: how it lists (in pages,
// at the latest resourceVersion), when it relists (only on 410 Gone) and when it
// just watches again from where it was, and how it waits between attempts.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import type { KubeConfig } from '../../../src/kube/config.js';
import { Reflector } from '../../../src/kube/reflector.js';
import { createLogger } from '../../../src/log.js';
import { FakeApiServer, until, type Thing } from './fake-apiserver.js';

let api: FakeApiServer;
let kc: KubeConfig;
let reflector: Reflector<Thing> | undefined;
const changed: string[] = [];

beforeEach(async () => {
  api = new FakeApiServer();
  kc = await api.start();
  changed.length = 0;
});

afterEach(async () => {
  reflector?.stop();
  reflector = undefined;
  await api.stop();
});

/** A reflector with a few-millisecond backoff, so a test sees its retries at once. */
function start(pageSize = 500, firstList: 'latest' | 'cache' = 'latest'): Reflector<Thing> {
  reflector = new Reflector<Thing>(kc, {
    firstList,
    path: api.path,
    log: createLogger({ component: 'test', level: 'error', format: 'text' }),
    onChange: (name) => changed.push(name),
    transform: (t) => ({
      ...t,
      metadata: { name: t.metadata.name, resourceVersion: t.metadata.resourceVersion },
    }),
    pageSize,
    backoff: { initialMs: 5, capMs: 20, factor: 2, jitter: 1, resetAfterMs: 1000 },
  });
  reflector.start();
  return reflector;
}

const names = (r: Reflector<Thing>): string[] =>
  r
    .list()
    .map((t) => t.metadata.name)
    .sort();

describe('listing', () => {
  test('the first list reads the latest in pages, keeping each through transform, then watches from its resourceVersion', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) api.put(n);
    const r = start(2);
    await r.waitForSync();
    expect(names(r)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(r.get('c')?.metadata.managedFields).toBeUndefined();
    const lists = api.requests('list').map((s) => Object.fromEntries(s.query));
    expect(lists).toEqual([
      { limit: '2' },
      { limit: '2', continue: expect.any(String) },
      { limit: '2', continue: expect.any(String) },
    ]);
    await until('a watch', () => api.openWatches === 1);
    const w = api.requests('watch')[0]?.query;
    expect(w?.get('resourceVersion')).toBe(api.resourceVersion);
    expect(w?.get('allowWatchBookmarks')).toBe('true');
  });

  test('a reflector of a few objects reads its first list from the watch cache (resourceVersion 0), and later ones from where it was', async () => {
    api.put('a');
    const r = start(500, 'cache');
    await r.waitForSync();
    expect(names(r)).toEqual(['a']);
    expect(api.requests('list').map((s) => s.query.get('resourceVersion'))).toEqual(['0']);
    await until('a watch', () => api.openWatches === 1);
    const seen = api.resourceVersion;
    api.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' });
    await until('a second list', () => api.requests('list').length === 2);
    expect(api.requests('list')[1]?.query.get('resourceVersion')).toBe(seen);
  });

  test('an expired continue token starts the list again', async () => {
    for (const n of ['a', 'b', 'c']) api.put(n);
    api.script('list', {
      when: (q) => q.has('continue'),
      status: 410,
      body: { kind: 'Status', code: 410, reason: 'Expired', message: 'continue expired' },
    });
    const r = start(2);
    await r.waitForSync();
    expect(names(r)).toEqual(['a', 'b', 'c']);
    const lists = api.requests('list').map((s) => Object.fromEntries(s.query));
    expect(lists).toEqual([
      { limit: '2' },
      { limit: '2', continue: expect.any(String) },
      { limit: '2' },
      { limit: '2', continue: expect.any(String) },
    ]);
  });
});

describe('watching', () => {
  test('410 Gone on the watch relists, and what the new list lacks is deleted and announced', async () => {
    for (const n of ['a', 'b', 'c']) api.put(n);
    const r = start();
    await r.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    const seenRv = api.resourceVersion;
    // Changes the watch never delivered: the relist must find them.
    api.remove('b');
    api.put('d');
    changed.length = 0;
    api.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' });
    await until('the relist', () => r.get('d') !== undefined && r.get('b') === undefined);
    expect(names(r)).toEqual(['a', 'c', 'd']);
    expect(changed.sort()).toEqual(['b', 'd']);
    // From what it had seen, not a quorum read: no limit, so the watch cache answers it whole.
    expect(Object.fromEntries(api.requests('list')[1]?.query ?? [])).toEqual({
      resourceVersion: seenRv,
    });
    await until('a new watch', () => api.requests('watch').length === 2);
    expect(api.requests('watch')[1]?.query.get('resourceVersion')).toBe(api.resourceVersion);
  });

  test('a watch the server closes is opened again from the last event, without a list', async () => {
    api.put('a');
    const r = start();
    await r.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    const modified = api.put('a', 2);
    api.emit('MODIFIED', modified);
    await until('the event', () => r.get('a')?.spec?.size === 2);
    api.endWatches();
    await until('a second watch', () => api.requests('watch').length === 2);
    expect(api.requests('watch')[1]?.query.get('resourceVersion')).toBe(
      modified.metadata.resourceVersion,
    );
    expect(api.requests('list')).toHaveLength(1);
  });

  test('a bookmark moves the resourceVersion the next watch starts from', async () => {
    api.put('a');
    const r = start();
    await r.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    api.emit('BOOKMARK', { kind: 'Thing', metadata: { resourceVersion: '5000' } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    api.endWatches();
    await until('a second watch', () => api.requests('watch').length === 2);
    expect(api.requests('watch')[1]?.query.get('resourceVersion')).toBe('5000');
    expect(api.requests('list')).toHaveLength(1);
    expect(changed).toEqual(['a']);
  });

  test('a transient failure (500, a broken connection) is followed by a watch from the last resourceVersion, not a relist', async () => {
    api.put('a');
    const r = start();
    await r.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    const rv = api.resourceVersion;
    api.script('watch', { status: 500 });
    api.script('watch', { lines: [], end: false });
    api.endWatches();
    await until('a third watch', () => api.requests('watch').length === 3);
    for (const w of api.requests('watch')) expect(w.query.get('resourceVersion')).toBe(rv);
    expect(api.requests('list')).toHaveLength(1);
  });

  test('a line that is not an event ends the watch, nothing after it is applied, and the watch resumes', async () => {
    api.put('a');
    const r = start();
    await r.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    const b = api.put('b');
    const c = api.put('c');
    api.write(
      `${JSON.stringify({ type: 'ADDED', object: b })}\n{"type":"ADDED","obj\n${JSON.stringify({ type: 'ADDED', object: c })}\n`,
    );
    await until('a second watch', () => api.requests('watch').length === 2);
    expect(names(r)).toEqual(['a', 'b']);
    expect(api.requests('watch')[1]?.query.get('resourceVersion')).toBe(b.metadata.resourceVersion);
    expect(api.requests('list')).toHaveLength(1);
    api.emit('ADDED', c);
    await until('c', () => r.get('c') !== undefined);
  });

  test('Retry-After on a 429 or 503 is waited out, for a list and for a watch', async () => {
    api.put('a');
    api.script('list', { status: 503, headers: { 'Retry-After': '1' } });
    api.script('watch', { status: 429, headers: { 'Retry-After': '1' } });
    const r = start();
    await r.waitForSync();
    await until('a watch that stays', () => api.openWatches === 1, 5000);
    const [list1, list2] = api.requests('list');
    const [watch1, watch2] = api.requests('watch');
    expect((list2?.at ?? 0) - (list1?.at ?? 0)).toBeGreaterThanOrEqual(990);
    expect((watch2?.at ?? 0) - (watch1?.at ?? 0)).toBeGreaterThanOrEqual(990);
    expect(api.requests('list')).toHaveLength(2);
  });
});

describe('backoff', () => {
  test('once a watch is served again, the next failure waits the first step, not the grown one', async () => {
    api.put('a');
    reflector = new Reflector<Thing>(kc, {
      path: api.path,
      log: createLogger({ component: 'test', level: 'error', format: 'text' }),
      onChange: () => undefined,
      // No jitter: the steps are 100, 200, 400, 800 ms.
      backoff: { initialMs: 100, capMs: 800, factor: 2, jitter: 0, resetAfterMs: 60_000 },
    });
    reflector.start();
    await reflector.waitForSync();
    await until('a watch', () => api.openWatches === 1);
    const bookmark = JSON.stringify({
      type: 'BOOKMARK',
      object: { metadata: { resourceVersion: api.resourceVersion } },
    });
    for (let i = 0; i < 4; i++) api.script('watch', { status: 500 });
    api.script('watch', { lines: [`${bookmark}\n`], end: false });
    api.endWatches();
    await until('the served watch', () => api.requests('watch').length === 6, 5000);
    await until('its bookmark', () => api.openWatches === 1);
    api.script('watch', { status: 500 });
    api.endWatches();
    await until('a watch after the new failure', () => api.requests('watch').length === 8, 5000);
    const [failed, next] = api.requests('watch').slice(-2);
    // 100 ms after the reset; 800 ms (the grown step) without it.
    expect((next?.at ?? 0) - (failed?.at ?? 0)).toBeLessThan(500);
  });
});
