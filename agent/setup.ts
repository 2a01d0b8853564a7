// Wires one agent for one node: the backend (sysfs or simulator), the module
// fetcher, events. The `agent` command and the fleet simulator both use it.
import type { KubeConfig } from '../src/kube/config.js';
import { kernelRelease, type NodeName } from '../src/api/names.js';
import type { Clock } from '../src/clock.js';
import { EventRecorder } from '../src/kube/events.js';
import { rawJson } from '../src/kube/raw.js';
import { PATHS, type NodeObject } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import { operatorVersion } from '../src/paths.js';
import { Agent } from './agent.js';
import { knobsFromAnnotations } from './kernel/sim-knobs.js';
import type { SimulatedKernel } from './kernel/simulator.js';
import type { SysfsOptions } from './kernel/sysfs.js';
import type { KernelBackend } from './kernel/types.js';
import { createModuleFetcher } from './module-source.js';
import type { LivePatchNodeStatus } from '../src/api/generated/types.js';

export type BackendChoice =
  | { readonly kind: 'simulator'; readonly release?: string }
  | {
      readonly kind: 'sysfs';
      readonly options?: Partial<SysfsOptions>;
      readonly allowOnKind?: boolean;
    };

export interface AgentSetup {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: NodeName;
  readonly backend: BackendChoice;
  readonly clock: Clock;
  readonly log: Logger;
  readonly moduleDir: string;
  readonly hostRoot: string;
  readonly heartbeatMs?: number;
  readonly onReconciled?: (status: LivePatchNodeStatus) => void;
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
}

export class RefusedBackendError extends Error {
  override readonly name = 'RefusedBackendError';
}

export function readNode(kc: KubeConfig, name: NodeName): Promise<NodeObject> {
  return rawJson<NodeObject>(kc, 'GET', `${PATHS.nodes}/${name}`);
}

/** Each backend is imported when chosen: a node runs one, and need not load the other. */
async function simulatorFor(
  setup: AgentSetup,
  node: NodeObject,
  release: string | undefined,
): Promise<SimulatedKernel> {
  const { SimulatedKernel } = await import('./kernel/simulator.js');
  const uname = release ?? node.status?.nodeInfo?.kernelVersion;
  if (!uname)
    throw new RefusedBackendError(
      `node ${node.metadata.name} reports no kernelVersion; pass --kernel-release`,
    );
  const log = setup.log.child({ node: setup.nodeName });
  return new SimulatedKernel({
    release: kernelRelease(uname),
    clock: setup.clock,
    // Knobs are read from the Node when a transition starts, so a test can aim a node at any time.
    knobs: async () => {
      const current = await readNode(setup.kubeConfig, setup.nodeName);
      const { knobs, problems } = knobsFromAnnotations(current.metadata.annotations);
      for (const problem of problems) log.warn(`ignoring a simulator annotation: ${problem}`);
      return knobs;
    },
  });
}

export async function createBackend(setup: AgentSetup, node: NodeObject): Promise<KernelBackend> {
  const choice = setup.backend;
  if (choice.kind === 'simulator') return simulatorFor(setup, node, choice.release);
  // kind nodes are containers sharing the host's kernel: patching "the node" would patch the laptop.
  if (node.spec?.providerID?.startsWith('kind://') && !choice.allowOnKind) {
    throw new RefusedBackendError(
      `node ${node.metadata.name} is a kind node (providerID ${node.spec.providerID}) and shares the host's kernel; ` +
        'the sysfs backend refuses to touch it. Use --backend=simulator (the chart does on kind), or ' +
        '--allow-sysfs-on-kind if you really mean to patch the host.',
    );
  }
  const { DEFAULT_SYSFS_OPTIONS, SysfsKernel } = await import('./kernel/sysfs.js');
  return new SysfsKernel({ ...DEFAULT_SYSFS_OPTIONS, ...choice.options });
}

/** `backend`: an existing kernel to drive (a simulated node's kernel outlives its agent, as a real one does). */
export async function createAgent(
  setup: AgentSetup,
  existing?: KernelBackend,
): Promise<{ agent: Agent; backend: KernelBackend }> {
  const node = await readNode(setup.kubeConfig, setup.nodeName);
  const backend = existing ?? (await createBackend(setup, node));
  const agent = new Agent({
    nodeName: setup.nodeName,
    kubeConfig: setup.kubeConfig,
    backend,
    fetchModule: createModuleFetcher({
      kubeConfig: setup.kubeConfig,
      moduleDir: setup.moduleDir,
      hostRoot: setup.hostRoot,
    }),
    clock: setup.clock,
    log: setup.log.child({ node: setup.nodeName }),
    events: new EventRecorder(setup.kubeConfig, 'livepatch-agent', setup.nodeName, setup.log),
    version: operatorVersion(),
    ...(setup.heartbeatMs ? { heartbeatMs: setup.heartbeatMs } : {}),
    ...(setup.onReconciled ? { onReconciled: setup.onReconciled } : {}),
    ...(setup.onStatusWritten ? { onStatusWritten: setup.onStatusWritten } : {}),
  });
  return { agent, backend };
}
