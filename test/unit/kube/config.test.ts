import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../../../src/kube/config.js';

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
      clusters: [{ name: 'k', cluster }],
      users: [{ name: 'u', user }],
    }),
  );
  return path;
}

async function optionsOf(path: string): Promise<RequestOptions> {
  const opts: RequestOptions = { headers: {} };
  await loadKubeConfig(path).authorize(opts);
  return opts;
}

describe('kubeconfig loading', () => {
  it('checks the certificate against tls-server-name when the address is not in it', async () => {
    const path = kubeconfig(
      { server: 'https://10.0.2.100:6443', 'tls-server-name': 'localhost' },
      { token: 't' },
    );
    const opts = await optionsOf(path);
    expect(opts.servername).toBe('localhost');
    expect(opts.headers).toEqual({ Authorization: 'Bearer t' });
  });

  it('checks against the server address when no tls-server-name is given', async () => {
    const opts = await optionsOf(kubeconfig({ server: 'https://127.0.0.1:6443' }, { token: 't' }));
    expect(opts.servername).toBeUndefined();
    expect(opts.rejectUnauthorized).toBeUndefined();
  });
});
