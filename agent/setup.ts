// Wires one agent for one node: the backend (sysfs or simulator), the module
// fetcher, events, the node-local state. The `agent` command and the fleet
// simulator both use it.
import { join } from 'node:path';
import type { KubeConfig } from '../src/kube/config.js';
import { kernelRelease, type KernelRelease, type NodeName } from '../src/api/names.js';
import type { Clock } from '../src/clock.js';
import { EventRecorder } from '../src/kube/events.js';
import { rawJson } from '../src/kube/raw.js';
import { PATHS, type NodeObject } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import { operatorVersion } from '../src/paths.js';
import { Agent, type AgentOptions } from './agent.js';
import { knobsFromAnnotations } from './kernel/sim/sim-knobs.js';
import type { SimulatedKernel, SimulatorOptions } from './kernel/sim/simulator.js';
import type { SysfsOptions } from './kernel/sysfs.js';
import type { KernelBackend } from './kernel/types.js';
import { DEFAULT_RETRY_POLICY } from './module/fetch-retry.js';
import type { DownloadOptions } from './module/module-download.js';
import { createModuleFetcher, removeStaleDownloads } from './module/module-source.js';
import { NodeStateFile, type NodeIdentity } from './memory/node-state.js';

export type BackendChoice =
  | {
      readonly kind: 'simulator';
      readonly release?: string;
      /** Where the simulated kernel is kept, so that it outlives this agent process; none: in memory only. */
      readonly kernelFile?: string;
    }
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
  /** The only namespace module ConfigMaps are read from (the agent's RBAC allows no other); none: any. */
  readonly moduleNamespace?: string;
  /** The URL policy's redirect hosts and extra CA (module/module-policy.ts has the rest). */
  readonly moduleDownload?: Partial<DownloadOptions>;
  /** How long after its first failure a fetch that may work later is retried before the node fails (default 5 minutes). */
  readonly moduleRetryForMs?: number;
  /** Where the node-local state is kept; none: an agent restarted during an outage guards nothing. */
  readonly stateDir?: string;
  readonly heartbeatMs?: number;
  readonly onReconciled?: AgentOptions['onReconciled'];
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
  readonly pod?: AgentOptions['pod'];
  readonly apiUnreachableMs?: number;
  readonly ownNode?: AgentOptions['ownNode'];
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
  node: NodeIdentity,
  choice: Extract<BackendChoice, { kind: 'simulator' }>,
): Promise<SimulatedKernel> {
  const { SimulatedKernel } = await import('./kernel/sim/simulator.js');
  const uname = choice.release ?? node.kernelVersion;
  if (!uname)
    throw new RefusedBackendError(
      `node ${setup.nodeName} reports no kernelVersion; pass --kernel-release`,
    );
  const log = setup.log.child({ node: setup.nodeName });
  const release = kernelRelease(uname);
  const kept = choice.kernelFile ? await keptKernel(choice.kernelFile, release, log) : {};
  return new SimulatedKernel({
    release,
    clock: setup.clock,
    ...kept,
    // Knobs are read from the Node when a transition starts, so a test can aim a node at any time.
    knobs: async () => {
      const current = await readNode(setup.kubeConfig, setup.nodeName);
      const { knobs, problems } = knobsFromAnnotations(current.metadata.annotations);
      for (const problem of problems) log.warn(`ignoring a simulator annotation: ${problem}`);
      return knobs;
    },
  });
}

/** The simulated kernel this node was running before this process, and the writer that keeps it. */
async function keptKernel(
  file: string,
  release: KernelRelease,
  log: Logger,
): Promise<Pick<SimulatorOptions, 'state' | 'onChange'>> {
  const { readSimKernelFile, simKernelWriter } = await import('./kernel/sim/sim-state-file.js');
  const read = await readSimKernelFile(file, release);
  if (read.kind === 'ignored')
    log.warn('ignoring the saved simulated kernel; this node boots a fresh one', {
      path: file,
      why: read.why,
    });
  if (read.kind === 'restored') log.info('resuming the simulated kernel', { path: file });
  return {
    ...(read.kind === 'restored' ? { state: read.state } : {}),
    onChange: simKernelWriter(file, release),
  };
}

export async function createBackend(setup: AgentSetup, node: NodeIdentity): Promise<KernelBackend> {
  const choice = setup.backend;
  if (choice.kind === 'simulator') return simulatorFor(setup, node, choice);
  // kind nodes are containers sharing the host's kernel: patching "the node" would patch the laptop.
  if (node.providerID?.startsWith('kind://') && !choice.allowOnKind) {
    throw new RefusedBackendError(
      `node ${setup.nodeName} is a kind node (providerID ${node.providerID}) and shares the host's kernel; ` +
        'the sysfs backend refuses to touch it. Use --backend=simulator (the chart does on kind), or ' +
        '--allow-sysfs-on-kind if you really mean to patch the host.',
    );
  }
  const { DEFAULT_SYSFS_OPTIONS, SysfsKernel } = await import('./kernel/sysfs.js');
  return new SysfsKernel({ ...DEFAULT_SYSFS_OPTIONS, ...choice.options });
}

const MAX_WAIT_MS = 30_000;

/**
 * What the backend needs from the Node (its kernel, whether it is a kind
 * node): from the API server, else from what this agent saved the last time it
 * could read it, else it waits for the API server (with nothing saved there is
 * nothing to guard yet).
 */
async function readNodeIdentity(
  setup: AgentSetup,
  state: NodeStateFile | undefined,
): Promise<NodeIdentity> {
  const saved = await state?.load();
  for (let waitMs = 1000; ; waitMs = Math.min(MAX_WAIT_MS, waitMs * 2)) {
    try {
      const node = await readNode(setup.kubeConfig, setup.nodeName);
      const facts: NodeIdentity = {
        ...(node.status?.nodeInfo?.kernelVersion
          ? { kernelVersion: node.status.nodeInfo.kernelVersion }
          : {}),
        ...(node.spec?.providerID ? { providerID: node.spec.providerID } : {}),
        ...(node.status?.nodeInfo?.bootID ? { bootID: node.status.nodeInfo.bootID } : {}),
      };
      if (state) state.facts = facts;
      return facts;
    } catch (err) {
      const error = (err as Error).message;
      if (saved && state) {
        state.facts = saved.facts;
        setup.log.warn('cannot read the Node; starting from the node-local state', {
          node: setup.nodeName,
          error,
        });
        return saved.facts;
      }
      setup.log.warn('waiting for the API server to read the Node (no node-local state)', {
        node: setup.nodeName,
        error,
        retryInMs: waitMs,
      });
      await setup.clock.sleep(waitMs);
    }
  }
}

/** Partial files of an agent killed mid-fetch; none of this agent's fetches has started yet. */
async function clearStaleDownloads(setup: AgentSetup): Promise<void> {
  const log = setup.log.child({ node: setup.nodeName, moduleDir: setup.moduleDir });
  try {
    const removed = await removeStaleDownloads(setup.moduleDir);
    if (removed.length > 0)
      log.info('removed partial module downloads an earlier agent left behind', { removed });
  } catch (err) {
    log.warn(
      'cannot remove partial module downloads an earlier agent left behind; they take disk space ' +
        'until removed by hand (files named <patchName>.download-<pid>-<n> in the module folder)',
      { error: (err as Error).message },
    );
  }
}

/** How the controller tells this agent alive: its Pod, if a kubelet runs it, else its heartbeat. */
function livenessOptions(setup: AgentSetup): Pick<AgentOptions, 'pod' | 'apiUnreachableMs'> {
  return {
    ...(setup.pod ? { pod: setup.pod } : {}),
    ...(setup.apiUnreachableMs !== undefined ? { apiUnreachableMs: setup.apiUnreachableMs } : {}),
  };
}

/** `backend`: an existing kernel to drive (a simulated node's kernel outlives its agent, as a real one does). */
export async function createAgent(
  setup: AgentSetup,
  existing?: KernelBackend,
): Promise<{ agent: Agent; backend: KernelBackend }> {
  const state = setup.stateDir
    ? new NodeStateFile(join(setup.stateDir, 'agent-state.json'), setup.nodeName, setup.log)
    : undefined;
  // An existing (simulated) kernel is this boot's: its agent restarted, the node did not.
  const identity = existing ? undefined : await readNodeIdentity(setup, state);
  const backend = existing ?? (await createBackend(setup, identity ?? {}));
  await clearStaleDownloads(setup);
  const agent = new Agent({
    nodeName: setup.nodeName,
    kubeConfig: setup.kubeConfig,
    backend,
    fetchModule: createModuleFetcher({
      kubeConfig: setup.kubeConfig,
      moduleDir: setup.moduleDir,
      hostRoot: setup.hostRoot,
      ...(setup.moduleNamespace ? { configMapNamespace: setup.moduleNamespace } : {}),
      ...(setup.moduleDownload ? { download: setup.moduleDownload } : {}),
    }),
    ...(setup.moduleRetryForMs !== undefined
      ? { fetchRetry: { ...DEFAULT_RETRY_POLICY, giveUpAfterMs: setup.moduleRetryForMs } }
      : {}),
    clock: setup.clock,
    log: setup.log.child({ node: setup.nodeName }),
    events: new EventRecorder(setup.kubeConfig, 'livepatch-agent', setup.nodeName, setup.log),
    version: operatorVersion(),
    ...(setup.heartbeatMs ? { heartbeatMs: setup.heartbeatMs } : {}),
    ...(setup.onReconciled ? { onReconciled: setup.onReconciled } : {}),
    ...(state ? { state } : {}),
    ...(setup.onStatusWritten ? { onStatusWritten: setup.onStatusWritten } : {}),
    ...(identity?.bootID ? { bootID: identity.bootID } : {}),
    ...livenessOptions(setup),
    ...(setup.ownNode ? { ownNode: setup.ownNode } : {}),
  });
  return { agent, backend };
}
