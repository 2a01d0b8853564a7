import { describe, expect, it } from '@jest/globals';
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import { podEssentials, type NodeObject, type PodObject } from '../../../src/kube/resources.js';
import { concernedLivePatches, nodeChanged, podChanged } from '../../../src/controller/wake.js';
import { entry, livePatch, lpn, observed } from './fixtures.js';

const web = livePatch({
  name: 'web-fix',
  spec: { nodeSelector: { matchLabels: { pool: 'web' } } },
});
const db = livePatch({ name: 'db-fix', spec: { nodeSelector: { matchLabels: { pool: 'db' } } } });
const everywhere = livePatch({ name: 'everywhere' });
const all = [web, db, everywhere];
const on = (name: string): DesiredPatch['livePatch'] => name as DesiredPatch['livePatch'];

function node(o: { labels?: Record<string, string>; ready?: string; rv?: string }): NodeObject {
  return {
    metadata: { name: 'n1', labels: o.labels ?? {}, resourceVersion: o.rv ?? '1' },
    status: { conditions: [{ type: 'Ready', status: o.ready ?? 'True' }] },
  };
}

describe('which LivePatches a node change wakes', () => {
  it('an agent report wakes the LivePatches that select its node, not the others', () => {
    const report = lpn('n1', { heartbeat: 0 });
    expect(concernedLivePatches(all, [{ pool: 'web' }], [report, report]).sort()).toEqual([
      'everywhere',
      'web-fix',
    ]);
  });

  it('a LivePatch with an entry on the node wakes even when it no longer selects it', () => {
    const before = lpn('n1', { desired: [entry({ livePatch: on('db-fix') })] });
    const after = lpn('n1', { observed: [observed('Patched', { livePatch: on('db-fix') })] });
    expect(concernedLivePatches([web, db], [{ pool: 'web' }], [before, after]).sort()).toEqual([
      'db-fix',
      'web-fix',
    ]);
    expect(concernedLivePatches([web, db], [{ pool: 'web' }], [undefined, after])).toContain(
      'db-fix',
    );
  });

  it('a label change wakes the LivePatch the node leaves and the one it joins', () => {
    expect(
      concernedLivePatches([web, db], [{ pool: 'web' }, { pool: 'db' }], [undefined]).sort(),
    ).toEqual(['db-fix', 'web-fix']);
  });

  it('a node nobody selects or patches wakes nobody', () => {
    expect(concernedLivePatches([web, db], [{ pool: 'batch' }], [lpn('n1')])).toEqual([]);
  });
});

describe('whether a Node changed for the controller', () => {
  it('a new resourceVersion with the same essentials is no change', () => {
    expect(nodeChanged(node({ rv: '1' }), node({ rv: '2' }))).toBe(false);
  });

  it('Ready, labels, arrival and deletion are changes', () => {
    expect(nodeChanged(node({}), node({ ready: 'False', rv: '2' }))).toBe(true);
    expect(nodeChanged(node({}), node({ labels: { pool: 'web' }, rv: '2' }))).toBe(true);
    expect(nodeChanged(undefined, node({}))).toBe(true);
    expect(nodeChanged(node({}), undefined)).toBe(true);
  });
});

describe("whether an agent's Pod changed for the controller", () => {
  const pod = (o: { ready?: string; rv?: string; ip?: string }): PodObject =>
    podEssentials({
      metadata: { name: 'agent-1', uid: 'u1', resourceVersion: o.rv ?? '1' },
      spec: { nodeName: 'n1' },
      status: {
        conditions: [{ type: 'Ready', status: o.ready ?? 'True' }],
        containerStatuses: [{ started: true, state: { running: {} } }],
        ...(o.ip ? { podIP: o.ip } : {}),
      },
    });

  it('a kubelet write that touched nothing kept (a new resourceVersion, an IP) is no change', () => {
    expect(podChanged(pod({ rv: '1' }), pod({ rv: '2', ip: '10.0.0.7' }))).toBe(false);
  });

  it('Ready, arrival and deletion are changes', () => {
    expect(podChanged(pod({}), pod({ ready: 'False', rv: '2' }))).toBe(true);
    expect(podChanged(undefined, pod({}))).toBe(true);
    expect(podChanged(pod({}), undefined)).toBe(true);
  });
});
