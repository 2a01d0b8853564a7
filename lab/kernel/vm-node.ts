// A real-kernel node for a local cluster: a VM running one of the pinned
// kernels, registered as a Node, whose agent is the real `livepatch-operator
// agent` with the sysfs backend, reaching the API server through the VM's
// one forwarded port. The lab's helper module is loaded first, so a patch of
// its function (lpt_stall) stalls on this node the way a real stall does.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { NodeName } from '../../src/api/names.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { rawJson } from '../../src/kube/raw.js';
import { isNotFound, PATHS } from '../../src/kube/resources.js';
import { registerNode } from '../controlplane/nodes.js';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import type { KernelAssets } from './kernel-assets.js';
import { bootVm, VM_API_SERVER, type Vm } from './vm.js';

export interface VmNodeOptions {
  readonly name: NodeName;
  readonly assets: KernelAssets;
  /** The host's kubeconfig for the local control plane. */
  readonly kubeconfig: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly log: Logger;
}

export interface VmNode {
  readonly name: NodeName;
  readonly vm: Vm;
  /** Powers the VM off and removes its Node and LivePatchNode. */
  stop(): Promise<void>;
}

interface KubeconfigFile {
  clusters: { cluster: Record<string, unknown> }[];
}

/** The same credentials, with the server at the VM's forwarded address and the certificate's own name. */
async function vmKubeconfig(path: string): Promise<{ text: string; hostPort: number }> {
  const config = parse(await readFile(path, 'utf8')) as KubeconfigFile;
  let hostPort = 0;
  for (const { cluster } of config.clusters) {
    const server = new URL(String(cluster['server']));
    hostPort = Number(server.port);
    cluster['server'] = `https://${VM_API_SERVER.address}:${VM_API_SERVER.port}`;
    cluster['tls-server-name'] = server.hostname === '127.0.0.1' ? 'localhost' : server.hostname;
  }
  return { text: stringify(config), hostPort };
}

async function deleteIgnoringMissing(
  kc: ReturnType<typeof loadKubeConfig>,
  path: string,
): Promise<void> {
  try {
    await rawJson(kc, 'DELETE', path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export async function startVmNode(o: VmNodeOptions): Promise<VmNode> {
  const kc = loadKubeConfig(o.kubeconfig);
  const { release } = o.assets.line;
  await registerNode(kc, {
    name: o.name,
    release,
    labels: o.labels ?? {},
    providerID: `livepatch-vm://${o.name}`,
    osImage: 'Debian GNU/Linux 12 (livepatch-operator test VM)',
  });
  const { text, hostPort } = await vmKubeconfig(o.kubeconfig);
  const main = join(repositoryRoot(), 'dist', 'src', 'cli', 'main.js');
  const script = [
    'set -e',
    `insmod ${join(o.assets.modules, 'lpt_holder.ko')}`,
    `exec ${process.execPath} ${main} agent --node ${o.name} --backend sysfs \\`,
    '  --kubeconfig /run/job/kubeconfig --module-dir /run/livepatch-modules --metrics-port 0',
    '',
  ].join('\n');
  const vm = await bootVm({
    name: o.name,
    assets: o.assets,
    script,
    files: { kubeconfig: text },
    apiServerPort: hostPort,
    timeoutMs: 24 * 3600_000,
    log: o.log,
  });
  return {
    name: o.name,
    vm,
    stop: async () => {
      await vm.stop();
      await deleteIgnoringMissing(kc, `${PATHS.livePatchNodes}/${o.name}`);
      await deleteIgnoringMissing(kc, `${PATHS.nodes}/${o.name}`);
    },
  };
}
