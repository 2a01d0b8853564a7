// The mini cluster's host process, started in a network namespace of its own
// (`unshare --net`, by client.ts): the pods' network, etcd and kube-apiserver
// as a cluster runs it (listening on the kubernetes Service's IP, port 443),
// kube-controller-manager, kube-scheduler, and one test kubelet per simulated
// node, with the images "loaded" on them. Prints one line, MINICLUSTER {…},
// once everything is up; stops everything on SIGTERM or when stdin closes.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKubeConfig } from '../../../src/kube/config.js';
import { ensureClusterComponents } from '../../../lab/controlplane/assets.js';
import { startControlPlane } from '../../../lab/controlplane/controlplane.js';
import { createLogger } from '../../../src/log.js';
import { unpackImage, type UnpackedImage } from '../../../lab/image/unpack.js';
import { identityKubeconfig, startComponents } from './components.js';
import { Kubelet, type SimulatedNode } from './kubelet.js';
import { SERVICE_IP, setUpClusterNetwork } from './network.js';

export interface HostConfig {
  readonly workDir: string;
  readonly nodes: readonly SimulatedNode[];
  readonly images: readonly { readonly archive: string; readonly reference: string }[];
}

export interface HostReady {
  readonly kubeconfig: string;
  readonly controlPlaneDir: string;
}

async function loadImages(config: HostConfig): Promise<Map<string, UnpackedImage>> {
  const images = new Map<string, UnpackedImage>();
  for (const [i, image] of config.images.entries()) {
    const unpacked = await unpackImage(image.archive, join(config.workDir, 'images', String(i)));
    images.set(image.reference, unpacked);
  }
  return images;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  const log = createLogger({
    component: 'minicluster',
    format: 'text',
    level: process.env['LOG_LEVEL'] ?? 'warn',
  });
  await mkdir(config.workDir, { recursive: true });
  await setUpClusterNetwork();
  const bins = await ensureClusterComponents(log);
  const plane = await startControlPlane({
    log,
    mode: 'cluster',
    network: { bindAddress: '0.0.0.0', advertiseAddress: SERVICE_IP, extraSans: [SERVICE_IP] },
    port: 443,
    installCrds: false,
  });
  const components = await startComponents(plane, bins);
  const images = await loadImages(config);
  const kubelets: Kubelet[] = [];
  for (const node of config.nodes) {
    const kubeconfig = await identityKubeconfig(
      plane,
      `kubelet-${node.name}.kubeconfig`,
      `system:node:${node.name}`,
      ['system:nodes'],
    );
    const kubelet = new Kubelet({
      node,
      kc: loadKubeConfig(kubeconfig),
      dir: join(config.workDir, 'nodes', node.name),
      hostIP: '10.244.0.1',
      images,
      log,
    });
    await kubelet.start();
    kubelets.push(kubelet);
  }
  const ready: HostReady = { kubeconfig: plane.kubeconfig, controlPlaneDir: plane.dir };
  process.stdout.write(`MINICLUSTER ${JSON.stringify(ready)}\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.all(kubelets.map((k) => k.stop()));
    await components.stop();
    await plane.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.stdin.on('end', () => void stop());
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`minicluster: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
