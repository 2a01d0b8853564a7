// Where the agent gets a module from, the URL policy on loopback servers
// (http, and https with a throwaway CA), and the size and checksum gates
// before the kernel.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { mkdir, mkdtemp, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleSourceError } from '../../../agent/module/module-errors.js';
import { download } from '../../../agent/module/module-download.js';
import { DEFAULT_URL_POLICY, MODULE_MAX_BYTES } from '../../../agent/module/module-policy.js';
import { DEFAULT_RETRY_POLICY, type FetchState } from '../../../agent/module/fetch-retry.js';
import { ModuleFetches } from '../../../agent/module/module-fetches.js';
import {
  createModuleFetcher,
  removeStaleDownloads,
  sha256,
  type ModuleSourceOptions,
} from '../../../agent/module/module-source.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';
import { systemClock } from '../../../src/clock.js';
import { createControlPlanePki } from '../../../lab/controlplane/pki.js';
import { poll } from '../../../lab/wait.js';

const NAME = 'livepatch_fetch' as PatchName;
const BYTES = Buffer.from('module bytes');
const SUM = sha256(BYTES);
/** A small limit, so the size tests move kilobytes, not megabytes. */
const LIMIT = 4096;
let dir = '';
const servers: Server[] = [];
let http = '';
let other = '';
let tls = '';
let ca = '';

async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

type Response = Parameters<RequestListener>[1];

/** Every misbehaviour a mirror can show, one path each. */
const ROUTES: Readonly<Record<string, (res: Response) => void>> = {
  '/p.ko': (res) => res.end(BYTES),
  '/empty': (res) => res.end(),
  '/broken': (res) => res.writeHead(500).end(),
  '/busy': (res) => res.writeHead(503).end(),
  '/forbidden': (res) => res.writeHead(403).end(),
  '/moved': (res) => res.writeHead(302, { Location: '/p.ko' }).end(),
  '/loop': (res) => res.writeHead(302, { Location: '/loop' }).end(),
  '/to-other-host': (res) => res.writeHead(302, { Location: `${other}/p.ko` }).end(),
  '/to-http': (res) => res.writeHead(301, { Location: `${http}/p.ko` }).end(),
  '/to-file': (res) => res.writeHead(302, { Location: 'file:///etc/passwd' }).end(),
  '/big-declared': (res) =>
    res.writeHead(200, { 'Content-Length': String(LIMIT + 1) }).end(Buffer.alloc(LIMIT + 1)),
  '/big-streamed': streamForever,
  '/cut-short': (res) => {
    res.writeHead(200, { 'Content-Length': '1000' });
    res.write(Buffer.alloc(10));
    setTimeout(() => res.socket?.destroy(), 20);
  },
  '/silent': () => undefined,
  '/held': (res) => {
    hold('/held', 200, res);
  },
  '/held-redirect': (res) => {
    hold('/held-redirect', 302, res);
  },
  '/trickle': (res) => {
    res.writeHead(200);
    const t = setInterval(() => res.write('x'), 50);
    res.on('close', () => {
      clearInterval(t);
    });
  },
};

/** Answers the server never finishes, by path: the client must close them when it gives up. */
const held = new Map<string, Response>();

function hold(path: string, status: number, res: Response): void {
  held.set(path, res);
  res.writeHead(status);
  res.write('x');
}

/** Whether the client closed a held answer's connection within `ms`. */
function closedWithin(path: string, ms: number): Promise<boolean> {
  const res = held.get(path);
  if (!res) return Promise.resolve(false);
  if (res.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, false);
    res.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const routes: RequestListener = (req, res) => {
  const route = ROUTES[(req.url ?? '').split('?')[0] ?? ''];
  if (route) route(res);
  else res.writeHead(404).end();
};

/** No Content-Length, no end: only the streaming cap stops it. */
function streamForever(res: Response): void {
  res.writeHead(200);
  const chunk = Buffer.alloc(1024);
  const pump = (): void => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'module-source-'));
  await writeFile(join(dir, 'host.ko'), BYTES);
  http = `http://127.0.0.1:${await listen(createServer(routes))}`;
  // Another host: localhost is not 127.0.0.1 to the redirect policy.
  other = `http://localhost:${await listen(createServer(routes))}`;
  const pki = await createControlPlanePki();
  ca = pki.ca.cert;
  const tlsServer = createTlsServer({ cert: pki.serving.cert, key: pki.serving.key });
  tlsServer.on('request', routes);
  tls = `https://127.0.0.1:${await listen(tlsServer)}`;
});

afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

function fetcher(o: Partial<ModuleSourceOptions> = {}): ReturnType<typeof createModuleFetcher> {
  return createModuleFetcher({
    moduleDir: join(dir, 'modules'),
    hostRoot: '/',
    ...o,
    download: { maxBytes: LIMIT, extraCa: ca, ...o.download },
  });
}

async function refusal(
  url: string,
  o: Partial<ModuleSourceOptions> = {},
  sum = SUM,
): Promise<ModuleSourceError> {
  const err = await fetcher(o)(NAME, { url, sha256: sum }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ModuleSourceError);
  return err as ModuleSourceError;
}

describe('module sources', () => {
  test('an http url is downloaded, verified and kept under the module folder, named by checksum', async () => {
    const path = await fetcher()(NAME, { url: `${http}/p.ko`, sha256: SUM });
    expect(path).toBe(join(dir, 'modules', `livepatch_fetch-${SUM.slice(0, 16)}.ko`));
    expect(await readFile(path)).toEqual(BYTES);
  });

  test('an https url is verified against the CA the agent is given, never without it', async () => {
    const path = await fetcher()(NAME, { url: `${tls}/p.ko`, sha256: SUM });
    expect(await readFile(path)).toEqual(BYTES);
    const untrusted = await refusal(`${tls}/p.ko`, { download: { extraCa: '' } });
    expect(untrusted.retryable).toBe(false);
    expect(untrusted.message).toContain("the server's TLS certificate is not trusted");
  });

  test('a hostPath is read from the node', async () => {
    const path = await fetcher()(NAME, { hostPath: join(dir, 'host.ko'), sha256: SUM });
    expect(await readFile(path)).toEqual(BYTES);
  });

  test('nothing is left behind by a refused file', async () => {
    await refusal(`${http}/p.ko`, {}, 'f'.repeat(64));
    expect((await readdir(join(dir, 'modules'))).filter((f) => f.includes('download'))).toEqual([]);
  });
});

describe('the URL policy', () => {
  test('a redirect on the same host is followed; a loop is refused, not followed forever', async () => {
    const path = await fetcher()(NAME, { url: `${http}/moved`, sha256: SUM });
    expect(await readFile(path)).toEqual(BYTES);
    expect((await refusal(`${http}/loop`)).message).toContain('more than 5 redirects');
  });

  test('a redirect to another host is refused unless that host is allowed', async () => {
    const refused = await refusal(`${http}/to-other-host`);
    expect(refused.retryable).toBe(false);
    expect(refused.message).toContain('it redirects to another host (http://localhost:');
    expect(refused.message).toContain('nothing was loaded');
    const allowed = fetcher({ download: { redirectHosts: ['localhost'] } });
    expect(
      await readFile(await allowed(NAME, { url: `${http}/to-other-host`, sha256: SUM })),
    ).toEqual(BYTES);
  });

  test('https never redirects down to http, and no redirect leaves http(s)', async () => {
    expect((await refusal(`${tls}/to-http`)).message).toContain('from https down to plain http');
    expect((await refusal(`${http}/to-file`)).message).toContain('a file: URL');
  });

  test('404 and 403 are final; 500 and 503 are worth another try', async () => {
    const missing = await refusal(`${http}/nope`);
    expect(missing.message).toContain('HTTP 404 Not Found: no file there');
    expect(missing.retryable).toBe(false);
    expect((await refusal(`${http}/forbidden`)).retryable).toBe(false);
    const broken = await refusal(`${http}/broken`);
    expect(broken.message).toContain('HTTP 500 Internal Server Error');
    expect(broken.retryable).toBe(true);
    expect((await refusal(`${tls}/busy`)).retryable).toBe(true);
  });

  test('a server that never answers times out, and one that never finishes too', async () => {
    const silent = await refusal(`${http}/silent`, { download: { answerTimeoutMs: 200 } });
    expect(silent.message).toContain('no answer within 0.2s');
    expect(silent.retryable).toBe(true);
    const slow = await refusal(`${http}/trickle`, { download: { downloadTimeoutMs: 300 } });
    expect(slow.message).toContain('the download did not finish within 0.3s');
    expect(slow.retryable).toBe(true);
  });

  test('a file over the limit is refused by its Content-Length, or while streaming at the limit', async () => {
    const declared = await refusal(`${http}/big-declared`);
    expect(declared.message).toContain(
      `is ${LIMIT + 1} bytes (Content-Length), over the agent's module size limit`,
    );
    expect(declared.retryable).toBe(false);
    // Without a length the body never ends: only a cap enforced while streaming stops it.
    const streamed = await refusal(`${http}/big-streamed`);
    expect(streamed.message).toContain(
      `is more than ${LIMIT} bytes, over the agent's module size limit`,
    );
  });

  test('a download cut short is retried; an empty answer is named as empty', async () => {
    const cut = await refusal(`${http}/cut-short`);
    expect(cut.message).toContain('the connection broke off mid-file');
    expect(cut.retryable).toBe(true);
    const empty = await refusal(`${http}/empty`, {}, sha256(Buffer.alloc(0)));
    expect(empty.message).toContain('is empty (0 bytes)');
    expect(empty.retryable).toBe(false);
  });

  test('an answer the agent gives up on unread is closed, not left holding its socket', async () => {
    const unwritable = join(dir, 'no-such-folder', 'm.ko');
    const open = await download(`${http}/held`, DEFAULT_URL_POLICY, unwritable).catch(
      (e: unknown) => e,
    );
    expect((open as Error).message).toContain('ENOENT');
    expect(await closedWithin('/held', 2000)).toBe(true);
    const redirect = await refusal(`${http}/held-redirect`);
    expect(redirect.message).toContain('HTTP 302 without a Location');
    expect(await closedWithin('/held-redirect', 2000)).toBe(true);
  });

  test('a URL is named without its query in messages: a signed URL keeps its token', async () => {
    const err = await refusal(`${http}/nope?token=s3cr3t`);
    expect(err.message).toContain(`${http}/nope?…`);
    expect(err.message).not.toContain('s3cr3t');
  });
});

describe('module files', () => {
  test('a wrong checksum stops everything before the kernel, saying both checksums and the size', async () => {
    const err = await refusal(`${http}/p.ko`, {}, 'f'.repeat(64));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`(${BYTES.length} bytes) has sha256 ${SUM}`);
    expect(err.message).toContain('truncated or another build');
  });

  test('a truncated file fails its checksum', async () => {
    const path = join(dir, 'truncated.ko');
    await writeFile(path, BYTES);
    await truncate(path, 4);
    const err = await fetcher()(NAME, { hostPath: path, sha256: SUM }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('(4 bytes) has sha256');
  });

  test('an empty file is named as empty, whatever checksum it was given', async () => {
    const path = join(dir, 'empty.ko');
    await writeFile(path, '');
    const err = await fetcher()(NAME, { hostPath: path, sha256: sha256(Buffer.alloc(0)) }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toContain(`hostPath ${path} is empty (0 bytes)`);
  });

  test('a hostPath over the default limit is refused by its size, before a byte is read', async () => {
    const path = join(dir, 'huge.ko');
    await writeFile(path, '');
    await truncate(path, MODULE_MAX_BYTES + 1);
    const defaults = createModuleFetcher({ moduleDir: join(dir, 'modules'), hostRoot: '/' });
    const err = await defaults(NAME, { hostPath: path, sha256: SUM }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(
      `is ${MODULE_MAX_BYTES + 1} bytes, over the agent's module size limit of 16 MiB`,
    );
  });

  test('a hostPath that is a device or a pipe is refused, never read (it would not end)', async () => {
    const fifo = join(dir, 'pipe.ko');
    execFileSync('mkfifo', [fifo]);
    for (const path of ['/dev/zero', fifo]) {
      const err = await fetcher()(NAME, { hostPath: path, sha256: SUM }).catch((e: unknown) => e);
      expect((err as Error).message).toContain('is not a regular file on the node');
    }
  });

  test('a hostPath with ".." is refused even if the CRD were bypassed', async () => {
    const err = await fetcher()(NAME, { hostPath: `${dir}/../etc/passwd`, sha256: SUM }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toContain('not a normalized absolute path');
  });

  test.each([
    ['../../api/v1/secrets', 'm', 'namespace "../../api/v1/secrets" is not a DNS-1123 label'],
    [
      'kube-system',
      'm/../../secrets/token',
      'name "m/../../secrets/token" is not a DNS-1123 subdomain',
    ],
    ['Kube_System', 'm', 'namespace "Kube_System" is not a DNS-1123 label'],
  ])(
    'a ConfigMap namespace %s, name %s that no object can have is refused before any API call',
    async (namespace, name, says) => {
      const err = await fetcher({
        // Never used: the names are checked before any request.
        kubeConfig: { server: 'https://127.0.0.1:1', authorize: () => Promise.resolve() },
      })(NAME, { configMap: { namespace, name, key: 'module.ko' }, sha256: SUM }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ModuleSourceError);
      expect((err as ModuleSourceError).retryable).toBe(false);
      expect((err as Error).message).toContain(says);
      expect((err as Error).message).toContain('Fix spec.kernels[].module.configMap');
    },
  );

  test('a ConfigMap outside the module namespace is refused before any API call, saying where to put it', async () => {
    const confined = fetcher({
      // Never used: the namespace check comes before any request.
      kubeConfig: { server: 'https://127.0.0.1:1', authorize: () => Promise.resolve() },
      configMapNamespace: 'livepatch-system',
    });
    const err = await confined(NAME, {
      configMap: { namespace: 'kube-system', name: 'm', key: 'module.ko' },
      sha256: SUM,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModuleSourceError);
    expect((err as ModuleSourceError).retryable).toBe(false);
    expect((err as Error).message).toContain(
      'ConfigMap kube-system/m is outside livepatch-system, the only namespace',
    );
  });
});

describe('an agent that stops', () => {
  const partial = async (folder: string): Promise<string[]> =>
    (await readdir(folder).catch(() => [])).filter((f) => f.includes('.download-'));

  test('abandons a download that never finishes at once, leaving no partial file', async () => {
    const moduleDir = join(dir, 'stopping');
    const settled: FetchState[] = [];
    const fetches = new ModuleFetches({
      fetch: fetcher({ moduleDir, download: { downloadTimeoutMs: 5000 } }),
      clock: systemClock,
      policy: DEFAULT_RETRY_POLICY,
      onSettled: (_entry, state) => settled.push(state),
    });
    fetches.start({
      livePatch: 'cve-stop' as LivePatchName,
      patchName: NAME,
      state: 'Enabled',
      module: { url: `${http}/trickle`, sha256: SUM },
      generation: 1,
      stallTimeout: '60s',
      allowForce: false,
    });
    await poll(
      () => partial(moduleDir),
      (files) => files.length > 0,
      2000,
      { intervalMs: 10 },
    );
    expect(await partial(moduleDir)).toHaveLength(1);
    const started = Date.now();
    await fetches.stop();
    // The download's own deadline is 5 s here (120 s by default): only the stop ends it this soon.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await partial(moduleDir)).toEqual([]);
    expect(settled).toEqual([]);
  });

  test('the partial files an agent killed mid-download left are removed at the next start', async () => {
    const moduleDir = join(dir, 'killed');
    await mkdir(moduleDir, { recursive: true });
    await writeFile(join(moduleDir, `${NAME}.download-4242-1`), 'partial');
    await writeFile(join(moduleDir, `${NAME}-${SUM.slice(0, 16)}.ko`), BYTES);
    expect(await removeStaleDownloads(moduleDir)).toEqual([`${NAME}.download-4242-1`]);
    expect(await readdir(moduleDir)).toEqual([`${NAME}-${SUM.slice(0, 16)}.ko`]);
    expect(await removeStaleDownloads(join(dir, 'never-created'))).toEqual([]);
  });
});
