// Node objects for a local control plane, which has no kubelet to register
// them: Ready, with the kernel release a kubelet would report. The fleet
// simulator and the real-kernel VMs register their nodes through this.
import type { KubeConfig } from '../../src/kube/config.js';
import { FIELD_MANAGER } from '../../src/api/constants.js';
import type { NodeName } from '../../src/api/names.js';
import { rawJson } from '../../src/kube/raw.js';
import { isConflict, patchStatus, PATHS } from '../../src/kube/resources.js';
import { realisticNode, type NodeShape } from './node-shape.js';

export interface NodeRegistration {
  readonly name: NodeName;
  /** `uname -r`, reported as status.nodeInfo.kernelVersion. */
  readonly release: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly providerID: string;
  readonly osImage: string;
  /** Give the Node a cloud kubelet's size and shape (node-shape.ts), seeded by this index. */
  readonly realisticIndex?: number;
}

/**
 * The kubelet's hostname label: a label value holds at most 63 characters, and
 * a node name up to 253, so a long name gives its first DNS label, cut to fit.
 */
export function hostnameLabel(name: string): string {
  if (name.length <= 63) return name;
  return (name.split('.')[0] ?? '').slice(0, 63).replace(/[-.]+$/, '');
}

function nodeBody(n: NodeRegistration, shape: NodeShape | undefined): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: {
        ...shape?.labels,
        'kubernetes.io/hostname': hostnameLabel(n.name),
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        ...n.labels,
      },
      ...(shape ? { annotations: shape.annotations } : {}),
    },
    spec: { ...shape?.spec, providerID: n.providerID },
  };
}

function nodeStatus(n: NodeRegistration, now: string, shape: NodeShape | undefined): object {
  return {
    ...shape?.status,
    conditions: [
      ...(shape?.status.conditions ?? []),
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: `registered by livepatch-operator (${n.osImage})`,
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
    nodeInfo: {
      kernelVersion: n.release,
      osImage: n.osImage,
      operatingSystem: 'linux',
      architecture: 'amd64',
      containerRuntimeVersion: 'none://0',
      kubeletVersion: 'v1.37.2',
      kubeProxyVersion: '',
      machineID: n.name,
      systemUUID: n.name,
      bootID: n.name,
    },
  };
}

/** The node booted again: a new status.nodeInfo.bootID, as its kubelet reports after a reboot. */
export async function markRebooted(kc: KubeConfig, name: NodeName, bootID: string): Promise<void> {
  await patchStatus(kc, `${PATHS.nodes}/${name}`, { nodeInfo: { bootID } }, FIELD_MANAGER.fleet);
}

/** Creates the Node (or keeps the one there) and marks it Ready with its kernel release. */
export async function registerNode(kc: KubeConfig, n: NodeRegistration): Promise<void> {
  const now = new Date().toISOString();
  const shape = n.realisticIndex === undefined ? undefined : realisticNode(n.realisticIndex, now);
  try {
    await rawJson(kc, 'POST', PATHS.nodes, nodeBody(n, shape));
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
  await patchStatus(kc, `${PATHS.nodes}/${n.name}`, nodeStatus(n, now, shape), FIELD_MANAGER.fleet);
}
