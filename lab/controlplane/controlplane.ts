// A real, throwaway control plane on loopback: etcd and kube-apiserver with
// envtest-like flags, an admin kubeconfig, and the project's CRDs installed.
// Tests, the demo and the benchmark all start it the same way.
import { freePort } from '../ports.js';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../../src/log.js';
import {
  adminKubeconfig,
  apiserverArgs,
  LOOPBACK,
  type ApiserverMode,
  type ApiserverNetwork,
  type PkiFiles,
} from './apiserver.js';
import { ensureControlPlaneAssets } from './assets.js';
import { installCrds } from './crd-install.js';
import { createControlPlanePki, type ControlPlanePki } from './pki.js';
import { logTail, startManaged, startWatchdog, stopManaged, type Managed } from './processes.js';
import { poll } from '../wait.js';

export interface LocalControlPlane {
  readonly dir: string;
  /** The admin's kubeconfig (system:masters). */
  readonly kubeconfig: string;
  readonly server: string;
  readonly kubernetesVersion: string;
  /** The cluster's CA and keys, to issue client certificates for other identities. */
  readonly pki: ControlPlanePki;
  /** Stops the API server only (etcd keeps the data), as a control-plane outage would. */
  stopApiserver(): Promise<void>;
  /** Starts it again on the same port and data. */
  startApiserver(): Promise<void>;
  /** Stops etcd only (its data stays on disk), as an etcd restart or outage would. */
  stopEtcd(): Promise<void>;
  /** Starts etcd again on the same ports and data. */
  startEtcd(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly log: Logger;
  /** Install the LivePatch CRDs once the API server is ready (default true). */
  readonly installCrds?: boolean;
  /** Keep the data folder after stop, for a post-mortem. */
  readonly keepDir?: boolean;
  readonly mode?: ApiserverMode;
  /** Where the API server listens; default loopback. */
  readonly network?: ApiserverNetwork;
  /** Its port; default a free one. */
  readonly port?: number;
}

const STARTUP_TIMEOUT_MS = 90_000;

const PORT_ATTEMPTS = 3;

function addressInUse(err: unknown): boolean {
  return err instanceof Error && err.message.includes('address already in use');
}

/**
 * Starts a process on ports picked free a moment earlier. Another process on
 * the host (a parallel test, an outgoing connection) can take such a port
 * before ours binds it; then the process is started again on fresh ones.
 * Fixed ports are never swapped.
 */
async function startOnFreePorts<P extends readonly number[]>(
  pick: () => Promise<P>,
  fixed: P | undefined,
  make: (ports: P) => RestartableProcess,
  cleanup: () => Promise<void>,
): Promise<{ readonly process: RestartableProcess; readonly ports: P }> {
  for (let attempt = 1; ; attempt++) {
    const ports = fixed ?? (await pick());
    const process = make(ports);
    try {
      await process.start();
      return { process, ports };
    } catch (err) {
      await process.stop();
      if (fixed || attempt >= PORT_ATTEMPTS || !addressInUse(err)) throw err;
      await cleanup();
    }
  }
}

async function twoFreePorts(): Promise<readonly [number, number]> {
  const first = await freePort();
  let second = await freePort();
  while (second === first) second = await freePort();
  return [first, second];
}

async function oneFreePort(): Promise<readonly [number]> {
  return [await freePort()];
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  process: Managed,
): Promise<void> {
  const exited = (): boolean =>
    process.child.exitCode !== null || process.child.signalCode !== null;
  const r = await poll(
    async () => (exited() ? 'exited' : (await probe()) ? 'ready' : 'starting'),
    (state) => state !== 'starting',
    STARTUP_TIMEOUT_MS,
    { retryErrors: true },
  );
  if (r.last === 'ready') return;
  throw new Error(
    r.last === 'exited'
      ? `${process.name} exited before ${what}:\n${await logTail(process)}`
      : `${process.name} did not become ${what} within ${STARTUP_TIMEOUT_MS / 1000}s:\n${await logTail(process)}`,
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

async function writePki(dir: string, pki: ControlPlanePki): Promise<PkiFiles> {
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

function etcdArgs(dir: string, clientPort: number, peerPort: number, token: string): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    '--name=local',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=local=${peer}`,
    `--initial-cluster-token=${token}`,
    // Test data is thrown away; fsync only slows every write.
    '--unsafe-no-fsync',
    // 10,000 realistic Nodes (20 KB each), their Pods and LivePatchNodes, and the
    // revisions written between the API server's compactions (every 5 minutes)
    // outgrow the default 2 GiB; 8 GiB is etcd's suggested ceiling for large clusters.
    `--quota-backend-bytes=${8 * 1024 ** 3}`,
  ];
}

interface ProcessSpec {
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  /** The control plane's folder: its log goes there, and the watchdog removes it. */
  readonly dir: string;
  /** What `ready` tells, for the error when it never does ("healthy", "ready"). */
  readonly what: string;
  readonly ready: () => Promise<boolean>;
}

/** A control-plane process that can be stopped and started again on the same port and data. */
class RestartableProcess {
  private managed: Managed | undefined;
  private watchdog: ChildProcess | undefined;

  constructor(private readonly spec: ProcessSpec) {}

  async start(): Promise<void> {
    if (this.managed) return;
    const { name, binary, args, dir, what, ready } = this.spec;
    const managed = startManaged(name, binary, args, join(dir, `${name}.log`));
    this.managed = managed;
    this.watchdog = startWatchdog(dir, [managed]);
    await waitFor(what, ready, managed);
  }

  async stop(): Promise<void> {
    if (this.managed) await stopManaged(this.managed);
    this.watchdog?.kill();
    this.managed = undefined;
  }
}

function etcdProcess(
  dir: string,
  binary: string,
  [client, peer]: readonly [number, number],
): RestartableProcess {
  return new RestartableProcess({
    name: 'etcd',
    binary,
    args: etcdArgs(dir, client, peer, randomUUID()),
    dir,
    what: 'healthy',
    ready: () => etcdHealthy(`http://127.0.0.1:${client}`),
  });
}

export async function startControlPlane(options: StartOptions): Promise<LocalControlPlane> {
  const { log } = options;
  const network = options.network ?? LOOPBACK;
  const assets = await ensureControlPlaneAssets(log);
  const dir = await mkdtemp(join(tmpdir(), 'livepatch-controlplane-'));
  const started: RestartableProcess[] = [];
  const track = (process: RestartableProcess): RestartableProcess => {
    started.unshift(process);
    return process;
  };
  const stop = async (): Promise<void> => {
    for (const process of started) await process.stop();
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const pki = await createControlPlanePki(network.extraSans);
    const files = await writePki(dir, pki);
    const etcdStarted = await startOnFreePorts(
      twoFreePorts,
      undefined,
      (ports) => track(etcdProcess(dir, assets.etcd, ports)),
      // A member that never bound its ports must not leave its data behind.
      () => rm(join(dir, 'etcd'), { recursive: true, force: true }),
    );
    const etcdUrl = `http://127.0.0.1:${etcdStarted.ports[0]}`;
    const mode = options.mode ?? 'apiserver';
    const apiserverStarted = await startOnFreePorts(
      oneFreePort,
      options.port === undefined ? undefined : [options.port],
      ([port]) =>
        track(
          new RestartableProcess({
            name: 'kube-apiserver',
            binary: assets.apiserver,
            args: apiserverArgs({ dir, port, etcdUrl, files, network, mode }),
            dir,
            what: 'ready',
            ready: () => apiserverReady(`https://127.0.0.1:${port}`, pki),
          }),
        ),
      () => Promise.resolve(),
    );
    const server = `https://127.0.0.1:${apiserverStarted.ports[0]}`;
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, adminKubeconfig(server, pki), { mode: 0o600 });
    if (options.installCrds ?? true) await installCrds(kubeconfig);
    log.info('local control plane ready', {
      server,
      kubeconfig,
      kubernetes: assets.kubernetesVersion,
      assets: assets.origin,
      seconds: (Date.now() - t0) / 1000,
    });
    const [runningApiserver, runningEtcd] = [apiserverStarted.process, etcdStarted.process];
    return {
      dir,
      kubeconfig,
      server,
      kubernetesVersion: assets.kubernetesVersion,
      pki,
      stopApiserver: () => runningApiserver.stop(),
      startApiserver: () => runningApiserver.start(),
      stopEtcd: () => runningEtcd.stop(),
      startEtcd: () => runningEtcd.start(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
