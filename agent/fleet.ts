// A simulated fleet in one process: N Node objects (kernel version, Ready,
// labels, providerID) and one agent per node with the simulator backend, each
// with its own watch, as a real DaemonSet would run them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '../src/kube/config.js';
import { FIELD_MANAGER, LABELS } from '../src/api/constants.js';
import { kernelRelease, nodeName, type NodeName } from '../src/api/names.js';
import type { Clock } from '../src/clock.js';
import { rawJson } from '../src/kube/raw.js';
import { isConflict, isNotFound, patchStatus, PATHS } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import type { Agent } from './agent.js';
import type { KernelBackend } from './kernel/types.js';
import { createAgent } from './setup.js';

export interface FleetOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodes: number;
  readonly kernels: readonly string[];
  readonly namePrefix?: string;
  /** Extra labels on every node (e.g. a pool for nodeSelector). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly heartbeatMs?: number;
  /** Called after any agent's status write: a change, or a heartbeat alone. */
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
}

/** Requests in flight while the fleet starts: thousands at once would only queue in the API server. */
const START_CONCURRENCY = 32;

/** Runs `work` on every item, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export interface Fleet {
  readonly nodes: readonly NodeName[];
  /** Stops one node's agent, as if its pod died; `restart` brings a fresh one up. */
  stopAgent(node: NodeName): Promise<void>;
  restartAgent(node: NodeName): Promise<void>;
  /** Stops every agent; removes the Nodes and LivePatchNodes it created unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<void>;
}

function nodeBody(
  name: NodeName,
  release: string,
  labels: Readonly<Record<string, string>>,
): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        [LABELS.simulatedNode]: 'true',
        [LABELS.kernelRelease]: release,
        ...labels,
      },
    },
    spec: { providerID: `livepatch-sim://${name}` },
  };
}

function nodeStatus(name: NodeName, release: string, now: string): object {
  return {
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'simulated node',
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
    nodeInfo: {
      kernelVersion: release,
      osImage: 'Simulated Linux',
      operatingSystem: 'linux',
      architecture: 'amd64',
      containerRuntimeVersion: 'simulated://1.0',
      kubeletVersion: 'v1.37.2',
      kubeProxyVersion: '',
      machineID: name,
      systemUUID: name,
      bootID: name,
    },
  };
}

async function ensureNode(
  kc: KubeConfig,
  name: NodeName,
  release: string,
  labels: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    await rawJson(kc, 'POST', PATHS.nodes, nodeBody(name, release, labels));
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
  await patchStatus(
    kc,
    `${PATHS.nodes}/${name}`,
    nodeStatus(name, release, new Date().toISOString()),
    FIELD_MANAGER.fleet,
  );
}

async function deleteIgnoringMissing(kc: KubeConfig, path: string): Promise<void> {
  try {
    await rawJson(kc, 'DELETE', path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  if (o.kernels.length === 0) throw new Error('a fleet needs at least one kernel release');
  const releases = o.kernels.map((k) => kernelRelease(k));
  const workDir = await mkdtemp(join(tmpdir(), 'livepatch-fleet-'));
  const names = Array.from({ length: o.nodes }, (_, i) =>
    nodeName(`${o.namePrefix ?? 'sim-node'}-${String(i).padStart(3, '0')}`),
  );
  const agents = new Map<NodeName, Agent>();
  const kernels = new Map<NodeName, KernelBackend>();

  const startAgent = async (name: NodeName): Promise<void> => {
    const { agent, backend } = await createAgent(
      {
        kubeConfig: o.kubeConfig,
        nodeName: name,
        backend: { kind: 'simulator' },
        clock: o.clock,
        log: o.log,
        moduleDir: join(workDir, name),
        hostRoot: '/',
        ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
        ...(o.onStatusWritten ? { onStatusWritten: o.onStatusWritten } : {}),
      },
      kernels.get(name),
    );
    kernels.set(name, backend);
    await agent.start();
    agents.set(name, agent);
  };

  await eachLimited([...names.entries()], START_CONCURRENCY, ([i, name]) =>
    ensureNode(o.kubeConfig, name, releases[i % releases.length] ?? '', o.labels ?? {}),
  );
  await eachLimited(names, START_CONCURRENCY, startAgent);
  o.log.info('simulated fleet running', { nodes: names.length, kernels: releases });

  const stopAgent = async (name: NodeName): Promise<void> => {
    await agents.get(name)?.stop();
    agents.delete(name);
  };
  return {
    nodes: names,
    stopAgent,
    restartAgent: startAgent,
    stop: async (options) => {
      await Promise.all(names.map(stopAgent));
      if (!options?.keep) {
        // No garbage collector runs on a bare control plane, so the ownerReference alone would not do it.
        await eachLimited(names, START_CONCURRENCY, async (name) => {
          await deleteIgnoringMissing(o.kubeConfig, `${PATHS.livePatchNodes}/${name}`);
          await deleteIgnoringMissing(o.kubeConfig, `${PATHS.nodes}/${name}`);
        });
      }
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
