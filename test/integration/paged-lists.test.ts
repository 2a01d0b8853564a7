// Paged lists as the real kube-apiserver answers them: continue tokens are
// followed to the end (a continued page carries no resourceVersion, or the
// server refuses it), and a reflector that pages holds every object and sees
// a deletion.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadKubeConfig } from '../../src/kube/config.js';
import { listPages } from '../../src/kube/pager.js';
import { Reflector } from '../../src/kube/reflector.js';
import { createLogger } from '../../src/log.js';
import { waitUntil } from '../../lab/wait.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';

const NS = 'paged-lists';
const PATH = `/api/v1/namespaces/${NS}/configmaps`;
const NAMES = ['cm-1', 'cm-2', 'cm-3', 'cm-4', 'cm-5'];
const query = { labelSelector: 'paged=yes' };

interface ConfigMap {
  metadata?: { name?: string; resourceVersion?: string };
}

beforeAll(async () => {
  await kubectlOk(['create', 'namespace', NS]);
  for (const name of NAMES) {
    await kubectlOk(['-n', NS, 'create', 'configmap', name, '--from-literal=k=v']);
    await kubectlOk(['-n', NS, 'label', 'configmap', name, 'paged=yes']);
  }
});

afterAll(async () => {
  await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
});

describe('paged lists against the API server', () => {
  test('a consistent list in pages of 2 comes back in 3 pages holding all 5', async () => {
    const pages: string[][] = [];
    const listed = await listPages(loadKubeConfig(), PATH, query, 2, (items) => {
      pages.push((items as ConfigMap[]).map((c) => c.metadata?.name ?? ''));
    });
    expect(pages).toEqual([NAMES.slice(0, 2), NAMES.slice(2, 4), NAMES.slice(4)]);
    expect(listed.paginated).toBe(true);
    expect(Number(listed.resourceVersion)).toBeGreaterThan(0);
  });

  test('a list at resourceVersion "0" (the watch cache) holds all 5, paged or not', async () => {
    const names: string[] = [];
    await listPages(loadKubeConfig(), PATH, { ...query, resourceVersion: '0' }, 2, (items) => {
      names.push(...(items as ConfigMap[]).map((c) => c.metadata?.name ?? ''));
    });
    expect(names.sort()).toEqual(NAMES);
  });

  test('a reflector listing 2 at a time holds every object and sees one deleted', async () => {
    const changed: string[] = [];
    const reflector = new Reflector<ConfigMap>(loadKubeConfig(), {
      path: PATH,
      labelSelector: query.labelSelector,
      log: createLogger({ component: 'test', level: 'error', format: 'text' }),
      onChange: (name) => changed.push(name),
      pageSize: 2,
    });
    reflector.start();
    try {
      await reflector.waitForSync();
      expect(
        reflector
          .list()
          .map((c) => c.metadata?.name)
          .sort(),
      ).toEqual(NAMES);
      await kubectlOk(['-n', NS, 'delete', 'configmap', 'cm-3']);
      await waitUntil(
        'the deletion seen',
        () => Promise.resolve(reflector.get('cm-3')),
        (c) => c === undefined,
        10_000,
        50,
      );
      expect(changed.filter((n) => n === 'cm-3')).toHaveLength(2);
    } finally {
      reflector.stop();
    }
  });
});
