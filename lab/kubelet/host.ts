// The harness's host process: PID 1 of its own PID, mount and network
// namespaces (started so by cluster.ts), so that everything it starts, the
// Pods included, dies with it and every mount and network device goes with
// the namespaces. It runs etcd and kube-apiserver as a cluster does (on the
// kubernetes Service's IP, port 443), kube-controller-manager,
// kube-scheduler, and per node a containerd and a kubelet with the images
// imported. Prints `HARNESS {…}` once every Node is Ready; then takes one
// command a line on stdin (stop-apiserver, start-apiserver) and answers
// `DONE <command>`; stops everything when stdin closes or on SIGTERM.
import { mkdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../command.js';
import { ensureClusterComponents, ensureKubelet } from '../controlplane/assets.js';
import { identityKubeconfig, startComponents } from '../controlplane/components.js';
import { startControlPlane, type LocalControlPlane } from '../controlplane/controlplane.js';
import { stopManaged, type Managed } from '../controlplane/processes.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { rawJson } from '../../src/kube/raw.js';
import { createLogger, type Logger } from '../../src/log.js';
import { poll } from '../wait.js';
import { makeCgroup } from './cgroups.js';
import {
  containerdPaths,
  importImage,
  PRIVATE_RUNTIME_DIRS,
  startContainerd,
} from './containerd.js';
import { startKubelet } from './kubelet.js';
import { nodeAddresses, setUpClusterNetwork, SERVICE_IP, writeCniConfig } from './network.js';
import { buildPauseImage, PAUSE_IMAGE } from './pause-image.js';

export interface HarnessNode {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface HostConfig {
  readonly workDir: string;
  /** The harness's cgroup subtree; each node's kubelet gets `<cgroupRoot>/<node>`. */
  readonly cgroupRoot: string;
  readonly nodes: readonly HarnessNode[];
  /** OCI archives to import on every node. */
  readonly images: readonly string[];
}

export interface HostReady {
  readonly kubeconfig: string;
  readonly controlPlaneDir: string;
}

export type HostCommand = 'stop-apiserver' | 'start-apiserver';

const READY_TIMEOUT_MS = 180_000;

/**
 * Private copies of the runtime folders containerd insists on (/run/netns, its
 * shim sockets); and /lib/modules where the machine's kernel has no modules at
 * all: every node whose kernel can load one has that folder, and the sysfs
 * agent's Pod mounts it. It is an empty folder on an overlay of /usr/lib that
 * only these namespaces see.
 */
async function setUpMounts(workDir: string): Promise<void> {
  for (const dir of PRIVATE_RUNTIME_DIRS) {
    await mkdir(dir, { recursive: true });
    await runCommand('mount', ['-t', 'tmpfs', 'tmpfs', dir]);
  }
  if (!(await stat('/lib/modules').catch(() => undefined))) {
    const lib = await realpath('/lib');
    const upper = join(workDir, 'lib-overlay', 'upper');
    const work = join(workDir, 'lib-overlay', 'work');
    await mkdir(join(upper, 'modules'), { recursive: true });
    await mkdir(work, { recursive: true });
    const options = `lowerdir=${lib},upperdir=${upper},workdir=${work}`;
    await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', options, lib]);
  }
  // Shared within these namespaces only (they start private): what kubelets expect of a node.
  await runCommand('mount', ['--make-rshared', '/']);
}

interface NodeList {
  items: {
    metadata: { name: string };
    status?: { conditions?: { type: string; status: string }[] };
  }[];
}

async function waitForReadyNodes(plane: LocalControlPlane, count: number): Promise<void> {
  const kc = loadKubeConfig(plane.kubeconfig);
  const ready = (l: NodeList): number =>
    l.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
  const r = await poll(
    () => rawJson<NodeList>(kc, 'GET', '/api/v1/nodes'),
    (l) => ready(l) === count,
    READY_TIMEOUT_MS,
    { intervalMs: 500, retryErrors: true },
  );
  if (!r.ok)
    throw new Error(
      `${r.last ? ready(r.last) : 0} of ${count} nodes Ready after ${READY_TIMEOUT_MS / 1000}s`,
    );
}

async function startNode(
  config: HostConfig,
  index: number,
  plane: LocalControlPlane,
  kubelet: string,
  log: Logger,
): Promise<Managed[]> {
  const node = config.nodes[index];
  if (!node) throw new Error(`no node ${index}`);
  const dir = join(config.workDir, 'nodes', node.name);
  const cgroupRoot = `${config.cgroupRoot}/${node.name}`;
  await makeCgroup(cgroupRoot);
  const runtime = containerdPaths(join(dir, 'containerd'));
  await writeCniConfig(runtime.cniConfDir, index, join(dir, 'ipam'));
  const containerd = await startContainerd(runtime, PAUSE_IMAGE);
  for (const archive of config.images) await importImage(runtime, archive);
  const kubeconfig = await identityKubeconfig(
    plane,
    `kubelet-${node.name}.kubeconfig`,
    `system:node:${node.name}`,
    ['system:nodes'],
  );
  const k = await startKubelet(kubelet, {
    name: node.name,
    dir: join(dir, 'kubelet'),
    nodeIP: nodeAddresses(index).nodeIP,
    cgroupRoot,
    containerdSocket: runtime.socket,
    kubeconfig,
    clientCaFile: join(plane.dir, 'ca.crt'),
    labels: node.labels ?? {},
  });
  log.info('node started', { node: node.name });
  return [k, containerd];
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  const log = createLogger({
    component: 'kubelet-harness',
    format: 'text',
    level: process.env['LOG_LEVEL'] ?? 'warn',
  });
  await mkdir(config.workDir, { recursive: true });
  await setUpMounts(config.workDir);
  await setUpClusterNetwork(config.nodes.length);
  const bins = await ensureClusterComponents(log);
  const kubelet = await ensureKubelet(log);
  const pause = await buildPauseImage(join(config.workDir, 'images'), log);
  const plane = await startControlPlane({
    log,
    mode: 'cluster',
    network: { bindAddress: '0.0.0.0', advertiseAddress: SERVICE_IP, extraSans: [SERVICE_IP] },
    port: 443,
    installCrds: false,
  });
  const components = await startComponents(plane, bins);
  const nodeProcesses: Managed[] = [];
  const images = [pause.archive, ...config.images];
  for (let i = 0; i < config.nodes.length; i++)
    nodeProcesses.push(...(await startNode({ ...config, images }, i, plane, kubelet, log)));
  await waitForReadyNodes(plane, config.nodes.length);
  const ready: HostReady = { kubeconfig: plane.kubeconfig, controlPlaneDir: plane.dir };
  process.stdout.write(`HARNESS ${JSON.stringify(ready)}\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Kubelets first, so none restarts what its containerd loses; the Pods die with this
    // PID namespace when this process exits.
    for (const p of nodeProcesses) await stopManaged(p);
    await components.stop();
    await plane.stop();
    process.exit(0);
  };
  const commands: Record<HostCommand, () => Promise<void>> = {
    'stop-apiserver': () => plane.stopApiserver(),
    'start-apiserver': () => plane.startApiserver(),
  };
  let pending = '';
  process.stdin.on('data', (d: Buffer) => {
    pending += d.toString();
    let at;
    while ((at = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, at).trim();
      pending = pending.slice(at + 1);
      const command = line in commands ? commands[line as HostCommand] : undefined;
      if (!command) {
        process.stdout.write(`FAILED ${line} unknown command\n`);
        continue;
      }
      void command().then(
        () => process.stdout.write(`DONE ${line}\n`),
        (err: unknown) => process.stdout.write(`FAILED ${line} ${(err as Error).message}\n`),
      );
    }
  });
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.stdin.on('end', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`kubelet harness: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
