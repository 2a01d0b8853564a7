// One kubelet per node, as a node of a real cluster runs it: registered with a
// client certificate of the cluster's CA as system:node:NAME (the Node
// authorizer and NodeRestriction hold it to its own objects), on its own
// address, root folder, Pod log folder and cgroup root, talking CRI to its own
// containerd. cgroup v1 is allowed (failCgroupV1: false) because the machines
// this runs on may still have it; the cgroup driver is cgroupfs, as there is no
// systemd to delegate to.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startManaged, type Managed } from '../controlplane/processes.js';

export interface KubeletNode {
  readonly name: string;
  readonly dir: string;
  readonly nodeIP: string;
  readonly cgroupRoot: string;
  readonly containerdSocket: string;
  readonly kubeconfig: string;
  readonly clientCaFile: string;
  readonly labels: Readonly<Record<string, string>>;
}

function config(n: KubeletNode): string {
  const runtime = `unix://${n.containerdSocket}`;
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupRoot: n.cgroupRoot,
      containerRuntimeEndpoint: runtime,
      imageServiceEndpoint: runtime,
      address: n.nodeIP,
      readOnlyPort: 0,
      healthzPort: 0,
      podLogsDir: join(n.dir, 'pod-logs'),
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: false },
        x509: { clientCAFile: n.clientCaFile },
      },
      authorization: { mode: 'AlwaysAllow' },
      failSwapOn: false,
      // The machine is shared: neither its disk nor its memory may evict the test's Pods,
      // nor may image garbage collection remove the images the harness imported.
      evictionHard: {
        'memory.available': '0%',
        'nodefs.available': '0%',
        'imagefs.available': '0%',
      },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      resolvConf: '/etc/resolv.conf',
    },
    null,
    2,
  );
}

export async function startKubelet(binary: string, n: KubeletNode): Promise<Managed> {
  await mkdir(join(n.dir, 'pod-logs'), { recursive: true });
  const file = join(n.dir, 'kubelet-config.json');
  await writeFile(file, config(n));
  const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`);
  return startManaged(
    'kubelet',
    binary,
    [
      `--config=${file}`,
      `--kubeconfig=${n.kubeconfig}`,
      `--root-dir=${join(n.dir, 'root')}`,
      `--cert-dir=${join(n.dir, 'pki')}`,
      `--hostname-override=${n.name}`,
      `--node-ip=${n.nodeIP}`,
      ...(labels.length ? [`--node-labels=${labels.join(',')}`] : []),
    ],
    join(n.dir, 'kubelet.log'),
  );
}
