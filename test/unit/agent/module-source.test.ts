// Where the agent gets a module from, and the checksum gate before the kernel.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModuleFetcher, ModuleSourceError, sha256 } from '../../../agent/module-source.js';
import type { PatchName } from '../../../src/api/names.js';

const NAME = 'livepatch_fetch' as PatchName;
const BYTES = Buffer.from('module bytes');
let dir = '';
let server: Server;
let base = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'module-source-'));
  await writeFile(join(dir, 'host.ko'), BYTES);
  server = createServer((req, res) => {
    if (req.url === '/p.ko') res.end(BYTES);
    else if (req.url === '/broken') res.writeHead(503).end();
    else if (req.url === '/moved') res.writeHead(302, { Location: '/p.ko' }).end();
    else if (req.url === '/loop') res.writeHead(302, { Location: '/loop' }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => {
  server.close();
});

const fetcher = (): ReturnType<typeof createModuleFetcher> =>
  createModuleFetcher({ moduleDir: join(dir, 'modules'), hostRoot: '/' });

describe('module sources', () => {
  test('an http url is downloaded, verified and kept under the module folder, named by checksum', async () => {
    const path = await fetcher()(NAME, { url: `${base}/p.ko`, sha256: sha256(BYTES) });
    expect(path).toContain(
      join(dir, 'modules', `livepatch_fetch-${sha256(BYTES).slice(0, 16)}.ko`),
    );
    expect(await readFile(path)).toEqual(BYTES);
  });

  test('a redirect is followed; a redirect loop is refused, not followed forever', async () => {
    const path = await fetcher()(NAME, { url: `${base}/moved`, sha256: sha256(BYTES) });
    expect(await readFile(path)).toEqual(BYTES);
    const loop = await fetcher()(NAME, { url: `${base}/loop`, sha256: sha256(BYTES) }).catch(
      (e: unknown) => e,
    );
    expect((loop as Error).message).toContain('more than 5 redirects');
  });

  test('a hostPath is read from the node', async () => {
    const path = await fetcher()(NAME, { hostPath: join(dir, 'host.ko'), sha256: sha256(BYTES) });
    expect(await readFile(path)).toEqual(BYTES);
  });

  test('a wrong checksum stops everything before the kernel, saying both checksums', async () => {
    const err = await fetcher()(NAME, { url: `${base}/p.ko`, sha256: 'f'.repeat(64) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModuleSourceError);
    expect((err as ModuleSourceError).retryable).toBe(false);
    expect((err as Error).message).toContain(`the module file has sha256 ${sha256(BYTES)}`);
  });

  test('a server error is worth retrying; a missing file is not', async () => {
    const broken = await fetcher()(NAME, { url: `${base}/broken`, sha256: sha256(BYTES) }).catch(
      (e: unknown) => e,
    );
    expect((broken as ModuleSourceError).retryable).toBe(true);
    const missing = await fetcher()(NAME, { url: `${base}/nope`, sha256: sha256(BYTES) }).catch(
      (e: unknown) => e,
    );
    expect((missing as ModuleSourceError).message).toContain('HTTP 404');
    expect((missing as ModuleSourceError).retryable).toBe(false);
  });

  test('a hostPath with ".." is refused even if the CRD were bypassed', async () => {
    const err = await fetcher()(NAME, {
      hostPath: `${dir}/../etc/passwd`,
      sha256: sha256(BYTES),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('not a normalized absolute path');
  });

  test('a ConfigMap outside the module namespace is refused before any API call, saying where to put it', async () => {
    const confined = createModuleFetcher({
      // Never used: the namespace check comes before any request.
      kubeConfig: { server: 'https://127.0.0.1:1', authorize: () => Promise.resolve() },
      moduleDir: join(dir, 'modules'),
      hostRoot: '/',
      configMapNamespace: 'livepatch-system',
    });
    const err = await confined(NAME, {
      configMap: { namespace: 'kube-system', name: 'm', key: 'module.ko' },
      sha256: sha256(BYTES),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModuleSourceError);
    expect((err as ModuleSourceError).retryable).toBe(false);
    expect((err as Error).message).toContain(
      'ConfigMap kube-system/m is outside livepatch-system, the only namespace',
    );
  });
});
