// Several kubeconfig files read as one, as kubectl reads $KUBECONFIG.
import { describe, expect, test } from '@jest/globals';
import { mergeKubeconfigs } from '../../../src/kube/kubeconfig-merge.js';

describe('merging kubeconfig files', () => {
  test('the first file that has a name wins it; the current-context is the first one set', () => {
    const merged = mergeKubeconfigs([
      {
        path: '/a/config',
        file: {
          contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
          clusters: [{ name: 'k', cluster: { server: 'https://first' } }],
        },
      },
      {
        path: '/b/config',
        file: {
          'current-context': 'c',
          contexts: [{ name: 'c', context: { cluster: 'other', user: 'u' } }],
          clusters: [
            { name: 'k', cluster: { server: 'https://second' } },
            { name: 'other', cluster: { server: 'https://other' } },
          ],
          users: [{ name: 'u', user: { token: 't' } }],
        },
      },
      { path: '/c/config', file: { 'current-context': 'later' } },
    ]);
    expect(merged['current-context']).toBe('c');
    expect(merged.contexts).toEqual([{ name: 'c', context: { cluster: 'k', user: 'u' } }]);
    expect(merged.clusters?.map((c) => c.cluster?.['server'])).toEqual([
      'https://first',
      'https://other',
    ]);
    expect(merged.users?.[0]?.user).toEqual({ token: 't' });
  });

  test("relative file paths are read from each file's own folder", () => {
    const merged = mergeKubeconfigs([
      {
        path: '/a/config',
        file: { clusters: [{ name: 'k', cluster: { 'certificate-authority': 'ca.crt' } }] },
      },
      {
        path: '/b/sub/config',
        file: {
          users: [
            {
              name: 'u',
              user: {
                'client-key': '../key.pem',
                'client-certificate': '/abs/c.pem',
                tokenFile: 't',
              },
            },
          ],
        },
      },
    ]);
    expect(merged.clusters?.[0]?.cluster?.['certificate-authority']).toBe('/a/ca.crt');
    expect(merged.users?.[0]?.user).toEqual({
      'client-key': '/b/key.pem',
      'client-certificate': '/abs/c.pem',
      tokenFile: '/b/sub/t',
    });
  });
});
