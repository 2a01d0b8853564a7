// kubectl-livepatch as a user installs it: the one bundled file, copied into
// an empty folder outside the checkout (no node_modules anywhere above it),
// found by kubectl on PATH and run by the oldest Node it claims and by the
// pinned one, against the real API server: status, a steering write, a
// context picked from a merged KUBECONFIG, and the way through a proxy.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { commandOutcome, type CommandOutcome } from '../../lab/command.js';
import { bundlePlugin, OLDEST_NODE } from '../../lab/plugin/bundle.js';
import { ensureNode } from '../../lab/plugin/node-dist.js';
import { waitUntil } from '../../lab/wait.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy.js';
import { kubectlOk } from '../support/kubectl.js';
import { applyLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { onPath } from '../support/which.js';

const KERNEL = '6.1.0-26-amd64';
const cluster = useOwnCluster({ nodes: 2, kernels: [KERNEL], prefix: 'bundle' });
const log = createLogger({ component: 'plugin-bundle', format: 'text', level: 'warn' });

/** A name no resolver knows: only the test's proxy does. */
const HIDDEN_HOST = 'livepatch-apiserver.invalid';

interface Admin {
  readonly server: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

let folder = '';
let home = '';
let kubectlBinary = '';
let admin: Admin;
let proxy: ConnectProxy;
let bundleBytes = 0;

async function pinnedNode(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repositoryRoot(), 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const version = pkg.devDependencies['node'];
  if (!version) throw new Error('package.json pins no node devDependency');
  return version;
}

/** A kubeconfig file in the empty home, written as YAML (the bundle parses it with no node_modules). */
async function kubeconfig(name: string, doc: object): Promise<string> {
  const path = join(home, name);
  await writeFile(path, stringify({ apiVersion: 'v1', kind: 'Config', ...doc }));
  return path;
}

const adminUser = (): object => ({
  name: 'admin',
  user: { 'client-certificate-data': admin.cert, 'client-key-data': admin.key },
});

const realCluster = (name: string, extra: object = {}): object => ({
  name,
  cluster: { server: admin.server, 'certificate-authority-data': admin.ca, ...extra },
});

beforeAll(async () => {
  const plane = cluster().plane;
  const parsed = JSON.parse(await readFile(plane.kubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
  };
  const [c, u] = [parsed.clusters[0]?.cluster, parsed.users[0]?.user];
  if (!c || !u) throw new Error('the control plane kubeconfig has no cluster or user');
  admin = {
    server: c.server,
    ca: c['certificate-authority-data'],
    cert: u['client-certificate-data'],
    key: u['client-key-data'],
  };
  const staging = await mkdtemp(join(tmpdir(), 'plugin-bundle-build-'));
  const bundle = await bundlePlugin(staging);
  bundleBytes = bundle.bytes;
  folder = await mkdtemp(join(tmpdir(), 'kubectl-livepatch-'));
  await copyFile(bundle.file, join(folder, 'kubectl-livepatch'));
  await rm(staging, { recursive: true });
  home = await mkdtemp(join(tmpdir(), 'plugin-home-'));
  kubectlBinary = onPath(process.env['KUBECTL'] ?? 'kubectl');
  proxy = await startConnectProxy({ [HIDDEN_HOST]: '127.0.0.1' });
  await cluster().startController('bundle-controller');
  await applyLivePatch('bundled', { kernel: KERNEL });
  await waitUntil(
    'the rollout to complete',
    () => kubectlOk(['get', 'lp', 'bundled', '-o', 'jsonpath={.status.phase}']),
    (phase) => phase === 'Complete',
  );
}, 300_000);

afterAll(async () => {
  await proxy.close();
  for (const dir of [folder, home]) if (dir) await rm(dir, { recursive: true, force: true });
});

test('the folder is outside every node_modules, and holds the one file', async () => {
  for (let dir = folder; dirname(dir) !== dir; dir = dirname(dir))
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
  expect(existsSync(join('/', 'node_modules'))).toBe(false);
  expect(await readdir(folder)).toEqual(['kubectl-livepatch']);
  expect(bundleBytes).toBeGreaterThan(0);
});

describe.each([
  ['the oldest Node it claims', () => Promise.resolve(OLDEST_NODE)],
  ['the pinned Node', pinnedNode],
])('kubectl-livepatch on %s', (_what, version) => {
  let nodeBin = '';
  let expected = '';

  /** kubectl with only the plugin's folder and that Node on PATH, and an empty home. */
  const run = (
    args: readonly string[],
    env: Readonly<Record<string, string>>,
  ): Promise<CommandOutcome> =>
    commandOutcome(kubectlBinary, args, {
      env: { PATH: `${folder}${delimiter}${nodeBin}`, HOME: home, ...env },
    });

  beforeAll(async () => {
    expected = await version();
    nodeBin =
      expected === process.versions.node
        ? dirname(process.execPath)
        : await ensureNode(expected, log);
  }, 300_000);

  test('node on that PATH is that release', async () => {
    const { stdout } = await commandOutcome(join(nodeBin, 'node'), ['--version']);
    expect(stdout.trim()).toBe(`v${expected}`);
  });

  test('status shows the rollout and each node, from a KUBECONFIG in YAML; -n changes nothing', async () => {
    const config = await kubeconfig('single.yaml', {
      'current-context': 'lab',
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'admin' } }],
      clusters: [realCluster('lab')],
      users: [adminUser()],
    });
    const r = await run(['livepatch', 'status', 'bundled', '-n', 'kube-system'], {
      KUBECONFIG: config,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^LivePatch bundled: Enabled, Complete, 2\/2 patched/);
    expect(r.stdout.match(/\s+Patched\s+/g)).toHaveLength(2);
  });

  test('pause and resume write spec.rollout.paused, read back by kubectl', async () => {
    const config = await kubeconfig('single.yaml', {
      'current-context': 'lab',
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'admin' } }],
      clusters: [realCluster('lab')],
      users: [adminUser()],
    });
    const paused = await run(['livepatch', 'pause', 'bundled'], { KUBECONFIG: config });
    expect(paused.stdout).toContain('livepatch.livepatch.io/bundled paused');
    expect(await kubectlOk(['get', 'lp', 'bundled', '-o', 'jsonpath={.spec.rollout.paused}'])).toBe(
      'true',
    );
    const resumed = await run(['livepatch', 'resume', 'bundled'], { KUBECONFIG: config });
    expect(resumed.stdout).toContain('livepatch.livepatch.io/bundled resumed');
    expect(await kubectlOk(['get', 'lp', 'bundled', '-o', 'jsonpath={.spec.rollout.paused}'])).toBe(
      'false',
    );
  });

  test('--context picks a context from a merged KUBECONFIG; the first file wins each name', async () => {
    // The first file's current context names a cluster nobody listens on; the
    // second file has a cluster of that name that works, which must lose.
    const first = await kubeconfig('first.yaml', {
      'current-context': 'nowhere',
      contexts: [
        { name: 'nowhere', context: { cluster: 'nowhere', user: 'admin' } },
        { name: 'lab', context: { cluster: 'lab', user: 'admin' } },
      ],
      clusters: [{ name: 'nowhere', cluster: { server: 'https://127.0.0.1:9' } }],
    });
    const second = await kubeconfig('second.yaml', {
      'current-context': 'lab',
      contexts: [{ name: 'lab', context: { cluster: 'nowhere', user: 'admin' } }],
      clusters: [realCluster('nowhere'), realCluster('lab')],
      users: [adminUser()],
    });
    const KUBECONFIG = `${first}${delimiter}${second}`;
    const current = await run(['livepatch', 'nodes'], { KUBECONFIG });
    expect(current.code).toBe(1);
    expect(current.stderr).toContain('ECONNREFUSED 127.0.0.1:9');
    const chosen = await run(['livepatch', 'nodes', '--context', 'lab'], { KUBECONFIG });
    expect(chosen.stderr).toBe('');
    expect(chosen.stdout.match(/\s+bundled\s+livepatch_bundled\s+Patched\s+/g)).toHaveLength(2);
    const missing = await run(['livepatch', 'nodes', '--context', 'nope'], { KUBECONFIG });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no context named "nope"');
  });

  test("the kubeconfig cluster's proxy-url carries every request, even to a loopback server", async () => {
    const config = await kubeconfig('proxied.yaml', {
      'current-context': 'lab',
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'admin' } }],
      clusters: [realCluster('lab', { 'proxy-url': proxy.url })],
      users: [adminUser()],
    });
    const target = new URL(admin.server).host;
    const before = proxy.tunnels().get(target) ?? 0;
    const r = await run(['livepatch', 'status', 'bundled'], { KUBECONFIG: config });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^LivePatch bundled: Enabled, Complete/);
    expect(proxy.tunnels().get(target) ?? 0).toBeGreaterThan(before);
  });

  test('HTTPS_PROXY reaches a server only the proxy can resolve; NO_PROXY sends it direct', async () => {
    const port = new URL(admin.server).port;
    const config = await kubeconfig('hidden.yaml', {
      'current-context': 'lab',
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'admin' } }],
      clusters: [
        {
          name: 'lab',
          cluster: {
            server: `https://${HIDDEN_HOST}:${port}`,
            // The serving certificate names localhost, not the hidden name.
            'tls-server-name': 'localhost',
            'certificate-authority-data': admin.ca,
          },
        },
      ],
      users: [adminUser()],
    });
    const target = `${HIDDEN_HOST}:${port}`;
    const before = proxy.tunnels().get(target) ?? 0;
    const through = await run(['livepatch', 'nodes'], {
      KUBECONFIG: config,
      HTTPS_PROXY: proxy.url,
      NO_PROXY: '127.0.0.1,.example.com',
    });
    expect(through.stderr).toBe('');
    expect(through.stdout.match(/\s+Patched\s+/g)).toHaveLength(2);
    const served = proxy.tunnels().get(target) ?? 0;
    expect(served).toBeGreaterThan(before);
    const direct = await run(['livepatch', 'nodes'], {
      KUBECONFIG: config,
      HTTPS_PROXY: proxy.url,
      NO_PROXY: '.invalid',
    });
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain(`ENOTFOUND ${HIDDEN_HOST}`);
    expect(proxy.tunnels().get(target) ?? 0).toBe(served);
  });
});
