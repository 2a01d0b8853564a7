// A real, throwaway control plane on loopback: etcd and kube-apiserver with
// envtest-like flags, an admin kubeconfig, and the project's CRDs installed.
// Tests, the demo and the benchmark all start it the same way.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log.js';
import { ensureControlPlaneAssets } from './assets.js';
import { installCrds } from './crd-install.js';
import { createControlPlanePki, type ControlPlanePki } from './pki.js';
import { logTail, startManaged, startWatchdog, stopManaged, type Managed } from './processes.js';

export interface LocalControlPlane {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly kubernetesVersion: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly log: Logger;
  /** Install the LivePatch CRDs once the API server is ready (default true). */
  readonly installCrds?: boolean;
  /** Keep the data folder after stop, for a post-mortem. */
  readonly keepDir?: boolean;
}

const STARTUP_TIMEOUT_MS = 90_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  process: Managed,
): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null || process.child.signalCode !== null) {
      throw new Error(`${process.name} exited before ${what}:\n${await logTail(process)}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${process.name} did not become ${what} within ${STARTUP_TIMEOUT_MS / 1000}s:\n${await logTail(process)}`,
  );
}

function etcdHealthy(clientUrl: string): Promise<boolean> {
  return fetch(`${clientUrl}/health`).then(
    async (res) => res.ok && (await res.text()).includes('"true"'),
  );
}

function apiserverReady(server: string, pki: ControlPlanePki): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${server}/readyz`,
      { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => {
      resolve(false);
    });
    req.end();
  });
}

/**
 * The admin kubeconfig, written as JSON (which kubectl, client-go and our own
 * loader read like YAML): a process given it parses it without loading a YAML
 * parser, as an agent in a pod does with its service account.
 */
function kubeconfigJson(server: string, pki: ControlPlanePki): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'livepatch-local',
        cluster: { server, 'certificate-authority-data': b64(pki.ca.cert) },
      },
    ],
    users: [
      {
        name: 'livepatch-admin',
        user: {
          'client-certificate-data': b64(pki.admin.cert),
          'client-key-data': b64(pki.admin.key),
        },
      },
    ],
    contexts: [
      { name: 'livepatch-local', context: { cluster: 'livepatch-local', user: 'livepatch-admin' } },
    ],
    'current-context': 'livepatch-local',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

async function writePki(dir: string, pki: ControlPlanePki): Promise<Record<string, string>> {
  const files = {
    ca: join(dir, 'ca.crt'),
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    saPublic: join(dir, 'sa.pub'),
    saPrivate: join(dir, 'sa.key'),
  };
  await Promise.all([
    writeFile(files.ca, pki.ca.cert),
    writeFile(files.servingCert, pki.serving.cert),
    writeFile(files.servingKey, pki.serving.key, { mode: 0o600 }),
    writeFile(files.saPublic, pki.serviceAccount.publicKey),
    writeFile(files.saPrivate, pki.serviceAccount.privateKey, { mode: 0o600 }),
  ]);
  return files;
}

function startEtcd(etcdBinary: string, dir: string, clientPort: number, peerPort: number): Managed {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return startManaged(
    'etcd',
    etcdBinary,
    [
      '--name=local',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=local=${peer}`,
      `--initial-cluster-token=${randomUUID()}`,
      // Test data is thrown away; fsync only slows every write.
      '--unsafe-no-fsync',
    ],
    join(dir, 'etcd.log'),
  );
}

function startApiserver(
  binary: string,
  dir: string,
  port: number,
  etcdUrl: string,
  files: Record<string, string>,
): Managed {
  const f = (key: string): string => files[key] ?? '';
  return startManaged(
    'kube-apiserver',
    binary,
    [
      '--advertise-address=127.0.0.1',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--tls-cert-file=${f('servingCert')}`,
      `--tls-private-key-file=${f('servingKey')}`,
      `--client-ca-file=${f('ca')}`,
      `--etcd-servers=${etcdUrl}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=https://127.0.0.1:${port}`,
      `--service-account-key-file=${f('saPublic')}`,
      `--service-account-signing-key-file=${f('saPrivate')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // The endpoint reconciler refuses loopback addresses; nothing here needs the kubernetes Service.
      '--endpoint-reconciler-type=none',
      // No controller-manager creates default ServiceAccounts here.
      '--disable-admission-plugins=ServiceAccount',
    ],
    join(dir, 'kube-apiserver.log'),
  );
}

export async function startControlPlane(options: StartOptions): Promise<LocalControlPlane> {
  const { log } = options;
  const assets = await ensureControlPlaneAssets(log);
  const dir = await mkdtemp(join(tmpdir(), 'livepatch-controlplane-'));
  const started: Managed[] = [];
  let watchdog: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    for (const p of [...started].reverse()) await stopManaged(p);
    watchdog?.kill();
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const pki = await createControlPlanePki();
    const files = await writePki(dir, pki);
    const [etcdClient, etcdPeer, securePort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = startEtcd(assets.etcd, dir, etcdClient, etcdPeer);
    started.push(etcd);
    await waitFor('healthy', () => etcdHealthy(etcdUrl), etcd);
    const apiserver = startApiserver(assets.apiserver, dir, securePort, etcdUrl, files);
    started.push(apiserver);
    watchdog = startWatchdog(dir, started);
    const server = `https://127.0.0.1:${securePort}`;
    await waitFor('ready', () => apiserverReady(server, pki), apiserver);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigJson(server, pki), { mode: 0o600 });
    if (options.installCrds ?? true) await installCrds(kubeconfig);
    log.info('local control plane ready', {
      server,
      kubeconfig,
      kubernetes: assets.kubernetesVersion,
      assets: assets.origin,
      seconds: (Date.now() - t0) / 1000,
    });
    return { dir, kubeconfig, server, kubernetesVersion: assets.kubernetesVersion, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
