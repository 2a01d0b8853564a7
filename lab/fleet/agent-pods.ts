// Agent Pods for a simulated fleet, as a DaemonSet and a kubelet would keep
// them: one Pod per agent, bound to its node (spec.nodeName), with the chart's
// agent labels, its status written through the status subresource as its
// kubelet writes it (only when it changes). The bare control plane runs no
// kubelet, scheduler or ServiceAccount admission, so the Pod is made whole here.
import type { KubeConfig } from '../../src/kube/config.js';
import { AGENT_POD_SELECTOR } from '../../src/api/constants.js';
import type { AgentPod } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import { rawJson } from '../../src/kube/raw.js';
import { isNotFound, PATHS } from '../../src/kube/resources.js';

/** What a kubelet reports of the agent's container. */
export type ContainerState =
  /** Running, its probes passing: Ready. */
  | 'ready'
  /** Running, its readiness probe failing: not Ready. */
  | 'unready'
  /** Exited (the process is gone): not Ready. */
  | 'exited';

const LABELS: Record<string, string> = Object.fromEntries(
  AGENT_POD_SELECTOR.split(',').map((kv) => kv.split('=') as [string, string]),
);

export const agentPodName = (node: NodeName): string => `livepatch-agent-${node}`;

function podPath(namespace: string, name: string): string {
  return `${PATHS.pods(namespace)}/${name}`;
}

/** The Pod's status as a kubelet writes it for a container in `state`. */
function kubeletStatus(state: ContainerState, now: string): object {
  const ready = state === 'ready' ? 'True' : 'False';
  const running = state !== 'exited';
  return {
    phase: 'Running',
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
      { type: 'Initialized', status: 'True', lastTransitionTime: now },
      { type: 'ContainersReady', status: ready, lastTransitionTime: now },
      { type: 'Ready', status: ready, lastTransitionTime: now },
    ],
    containerStatuses: [
      {
        name: 'agent',
        image: 'livepatch-operator:sim',
        imageID: '',
        ready: state === 'ready',
        started: running,
        restartCount: 0,
        state: running
          ? { running: { startedAt: now } }
          : { terminated: { exitCode: 137, reason: 'Error', finishedAt: now } },
      },
    ],
  };
}

/** Creates the agent's Pod on `node`, Ready, and says which Pod it is. */
export async function createAgentPod(
  kc: KubeConfig,
  namespace: string,
  node: NodeName,
): Promise<AgentPod> {
  const name = agentPodName(node);
  const body = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: LABELS },
    spec: { nodeName: node, containers: [{ name: 'agent', image: 'livepatch-operator:sim' }] },
  };
  const created = await rawJson<{ metadata: { uid: string } }>(
    kc,
    'POST',
    PATHS.pods(namespace),
    body,
  );
  await setAgentPod(kc, namespace, node, 'ready');
  return { name, namespace, uid: created.metadata.uid };
}

/** Writes the Pod's status as its kubelet would for a container in `state`. */
export async function setAgentPod(
  kc: KubeConfig,
  namespace: string,
  node: NodeName,
  state: ContainerState,
): Promise<void> {
  const status = kubeletStatus(state, new Date().toISOString());
  await rawJson(
    kc,
    'PATCH',
    `${podPath(namespace, agentPodName(node))}/status`,
    { status },
    'application/merge-patch+json',
  );
}

/** Deletes the agent's Pod at once (as a force delete, or a kubelet that confirmed it). */
export async function deleteAgentPod(
  kc: KubeConfig,
  namespace: string,
  node: NodeName,
): Promise<void> {
  try {
    await rawJson(kc, 'DELETE', `${podPath(namespace, agentPodName(node))}?gracePeriodSeconds=0`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** One fleet's agent Pods, made on first use and remembered. */
export class AgentPods {
  private readonly pods = new Map<NodeName, AgentPod>();

  constructor(
    private readonly kc: KubeConfig,
    readonly namespace: string,
  ) {}

  /** The node's agent Pod, made now if it has none. */
  async of(node: NodeName): Promise<AgentPod> {
    const known = this.pods.get(node);
    if (known) return known;
    const pod = await createAgentPod(this.kc, this.namespace, node);
    this.pods.set(node, pod);
    return pod;
  }

  /** What the node's kubelet reports of its agent's container; nothing if it has no Pod. */
  async set(node: NodeName, state: ContainerState | 'deleted'): Promise<void> {
    if (!this.pods.has(node)) return;
    if (state !== 'deleted') return setAgentPod(this.kc, this.namespace, node, state);
    this.pods.delete(node);
    await deleteAgentPod(this.kc, this.namespace, node);
  }
}
