// What a controller reads from its cache after its own write races a watch
// event: a deleted object never comes back from a write's late answer.
import { describe, expect, test } from '@jest/globals';
import type { KubeConfig } from '../../../src/kube/config.js';
import { Reflector } from '../../../src/kube/reflector.js';
import { createLogger } from '../../../src/log.js';

interface Obj {
  metadata: {
    name: string;
    resourceVersion: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
}

function cache(): { r: Reflector<Obj>; changed: string[] } {
  const changed: string[] = [];
  // Never started: no request is made.
  const kc: KubeConfig = { server: 'https://127.0.0.1:1', authorize: () => Promise.resolve() };
  const r = new Reflector<Obj>(kc, {
    path: '/apis/x/v1/things',
    log: createLogger({ component: 'test', level: 'error', format: 'text' }),
    onChange: (name) => changed.push(name),
  });
  return { r, changed };
}

const obj = (rv: number, extra: Partial<Obj['metadata']> = {}): Obj => ({
  metadata: { name: 'a', resourceVersion: String(rv), ...extra },
});

describe('the reflector cache', () => {
  test('a write answered after the deletion event does not bring the object back', () => {
    const { r, changed } = cache();
    r.applyEvent('ADDED', obj(10, { finalizers: ['f'] }));
    r.applyEvent('DELETED', obj(12));
    r.observe(obj(11, { deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: ['f'] }));
    r.observe(obj(12, { deletionTimestamp: '2026-01-01T00:00:00Z' }));
    expect(r.get('a')).toBeUndefined();
    expect(changed).toEqual(['a', 'a']);
  });

  test('an object being deleted gracefully (a Pod) stays until its deletion event', () => {
    const { r } = cache();
    r.applyEvent('ADDED', obj(10));
    r.observe(obj(11, { deletionTimestamp: '2026-01-01T00:00:00Z' }));
    expect(r.get('a')?.metadata.deletionTimestamp).toBe('2026-01-01T00:00:00Z');
    r.applyEvent('DELETED', obj(12));
    expect(r.get('a')).toBeUndefined();
  });

  test('an object created again under the same name is seen', () => {
    const { r } = cache();
    r.applyEvent('ADDED', obj(10));
    r.applyEvent('DELETED', obj(12));
    r.applyEvent('ADDED', obj(15));
    expect(r.get('a')?.metadata.resourceVersion).toBe('15');
    r.observe(obj(16));
    expect(r.get('a')?.metadata.resourceVersion).toBe('16');
  });
});
