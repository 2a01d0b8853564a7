// A simulated fleet in one process: N Node objects (kernel version, Ready,
// labels, providerID) and one agent per node with the simulator backend. With
// `pods`, each agent also has a Pod bound to its node whose readiness is
// written as its kubelet would (agent-pods.ts): the controller judges it alive
// by that, and the agent writes no heartbeat. Without, each agent writes its
// heartbeat.
//
// Each agent is the real one (agent/setup.ts createAgent: its pass, its
// simulated kernel, its status reporter, its Events, its node-local state),
// making the requests a real agent makes with the same bodies. Only the
// plumbing a real fleet cannot share is shared here, so that 10,000 agents fit
// in one process on two cores: instead of one watch of its own LivePatchNode
// per agent, one watch of all of them (shared-node-watch.ts) hands each agent
// its own object and wakes it when that changes; and the agents' requests go
// over the process's pool of keep-alive connections rather than one client
// per node. The API server therefore serves one LivePatchNode watch instead of
// N (each of which would see every LivePatchNode event and send one a minute
// bookmark), and the benchmark does not measure that part of a real fleet's
// cost.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '../../src/kube/config.js';
import { LABELS } from '../../src/api/constants.js';
import { kernelRelease, nodeName, type NodeName } from '../../src/api/names.js';
import type { Clock } from '../../src/clock.js';
import { rawJson } from '../../src/kube/raw.js';
import { isNotFound, PATHS } from '../../src/kube/resources.js';
import { markRebooted, registerNode } from '../controlplane/nodes.js';
import type { Logger } from '../../src/log.js';
import type { Agent } from '../../agent/agent.js';
import { SIM_KERNEL_FILE } from '../../agent/kernel/sim/sim-state-file.js';
import type { KernelBackend } from '../../agent/kernel/types.js';
import { createAgent, type AgentSetup } from '../../agent/setup.js';
import type { AgentPod } from '../../src/api/generated/types.js';
import { AgentPods, type ContainerState } from './agent-pods.js';
import { SharedNodeWatch } from './shared-node-watch.js';

export interface FleetOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodes: number;
  readonly kernels: readonly string[];
  readonly namePrefix?: string;
  /** Extra labels on every node (e.g. a pool for nodeSelector). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Nodes the size and shape a cloud kubelet gives them (lab/controlplane/node-shape.ts). */
  readonly realisticNodes?: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  readonly heartbeatMs?: number;
  /**
   * Where each node keeps its agent state and simulated kernel (DIR/NODE), kept
   * after stop so that an observer can read the kernels; none: a temporary
   * folder, kernels in memory only.
   */
  readonly stateDir?: string;
  /** Called after any agent's status write: a change, or a heartbeat alone. */
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
  /** Give each agent a Pod in this namespace (liveness by its readiness); none: heartbeats. */
  readonly pods?: { readonly namespace: string };
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
  /** Stops one node's agent, as if its process died (its Pod, if any, turns not Ready); `restart` brings a fresh one up. */
  stopAgent(node: NodeName): Promise<void>;
  restartAgent(node: NodeName): Promise<void>;
  /**
   * With pods: what the node's kubelet reports of its agent's container, or
   * the Pod deleted; the agent process itself runs on (a readiness probe
   * failing, a Pod deleted while its process has not stopped yet).
   */
  setAgentPod(node: NodeName, state: ContainerState | 'deleted'): Promise<void>;
  /** The node reboots into the same kernel: its agent stops, the kernel comes back empty, a fresh agent starts. */
  reboot(node: NodeName): Promise<void>;
  /** A new node joins: its Node object (on the first release), then its agent. */
  join(node: NodeName): Promise<void>;
  /** The node's simulated kernel, which outlives its agents as a real one does. */
  kernel(node: NodeName): KernelBackend | undefined;
  /** Stops every agent; removes the Nodes and LivePatchNodes it created unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<void>;
}

async function deleteIgnoringMissing(kc: KubeConfig, path: string): Promise<void> {
  try {
    await rawJson(kc, 'DELETE', path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

function registerSimNode(
  o: FleetOptions,
  name: NodeName,
  release: string,
  index: number,
): Promise<void> {
  return registerNode(o.kubeConfig, {
    name,
    release,
    labels: { [LABELS.simulatedNode]: 'true', ...o.labels },
    providerID: `livepatch-sim://${name}`,
    osImage: 'Simulated Linux',
    ...(o.realisticNodes ? { realisticIndex: index } : {}),
  });
}

/** One simulated node's agent, as the DaemonSet would run it there. */
function agentSetup(
  o: FleetOptions,
  workDir: string,
  name: NodeName,
  pod: AgentPod | undefined,
  watch: SharedNodeWatch,
): AgentSetup {
  return {
    kubeConfig: o.kubeConfig,
    nodeName: name,
    backend: {
      kind: 'simulator',
      ...(o.stateDir ? { kernelFile: join(workDir, name, SIM_KERNEL_FILE) } : {}),
    },
    clock: o.clock,
    log: o.log,
    moduleDir: join(workDir, name),
    stateDir: join(workDir, name),
    hostRoot: '/',
    ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.onStatusWritten ? { onStatusWritten: o.onStatusWritten } : {}),
    ...(pod ? { pod } : {}),
    ownNode: (onChange) => watch.view(name, onChange),
  };
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  if (o.kernels.length === 0) throw new Error('a fleet needs at least one kernel release');
  const releases = o.kernels.map((k) => kernelRelease(k));
  const workDir = o.stateDir ?? (await mkdtemp(join(tmpdir(), 'livepatch-fleet-')));
  const names = Array.from({ length: o.nodes }, (_, i) =>
    nodeName(`${o.namePrefix ?? 'sim-node'}-${String(i).padStart(3, '0')}`),
  );
  const agents = new Map<NodeName, Agent>();
  const pods = o.pods ? new AgentPods(o.kubeConfig, o.pods.namespace) : undefined;
  const kernels = new Map<NodeName, KernelBackend>();
  /** Reboots so far per node, for a new boot ID each time. */
  const boots = new Map<NodeName, number>();
  const watch = new SharedNodeWatch(o.kubeConfig, o.log);

  const startAgent = async (name: NodeName): Promise<void> => {
    const pod = await pods?.of(name);
    const { agent, backend } = await createAgent(
      agentSetup(o, workDir, name, pod, watch),
      kernels.get(name),
    );
    kernels.set(name, backend);
    await agent.start();
    agents.set(name, agent);
    await pods?.set(name, 'ready');
  };

  await eachLimited([...names.entries()], START_CONCURRENCY, ([i, name]) =>
    registerSimNode(o, name, releases[i % releases.length] ?? '', i),
  );
  watch.start();
  try {
    await eachLimited(names, START_CONCURRENCY, startAgent);
  } catch (err) {
    // Leave nothing running behind a fleet that did not start: its agents and their shared watch.
    await Promise.allSettled([...agents.values()].map((a) => a.stop()));
    watch.stop();
    throw err;
  }
  o.log.info('simulated fleet running', { nodes: names.length, kernels: releases });

  const stopAgent = async (name: NodeName): Promise<void> => {
    await agents.get(name)?.stop();
    agents.delete(name);
    await pods?.set(name, 'exited');
  };
  return {
    nodes: names,
    stopAgent,
    restartAgent: startAgent,
    setAgentPod: async (name, state) => {
      if (!pods) throw new Error('this fleet runs its agents without Pods');
      await pods.set(name, state);
    },
    reboot: async (name) => {
      await stopAgent(name);
      const boot = (boots.get(name) ?? 0) + 1;
      boots.set(name, boot);
      await markRebooted(o.kubeConfig, name, `${name}-boot-${boot}`);
      // Another boot: the simulated kernel starts empty, as a real one does (its file, if any, goes too).
      kernels.delete(name);
      if (o.stateDir) await rm(join(workDir, name, SIM_KERNEL_FILE), { force: true });
      await startAgent(name);
    },
    join: async (name) => {
      names.push(name);
      await registerSimNode(o, name, releases[0] ?? '', names.length - 1);
      await startAgent(name);
    },
    kernel: (name) => kernels.get(name),
    stop: async (options) => {
      // Each stop writes its Pod's status: 10,000 at once would only queue, and hold their bodies meanwhile.
      await eachLimited(names, START_CONCURRENCY, stopAgent);
      watch.stop();
      if (!options?.keep) {
        // No garbage collector runs on a bare control plane, so the ownerReference alone would not do it.
        await eachLimited(names, START_CONCURRENCY, async (name) => {
          await deleteIgnoringMissing(o.kubeConfig, `${PATHS.livePatchNodes}/${name}`);
          await deleteIgnoringMissing(o.kubeConfig, `${PATHS.nodes}/${name}`);
          await pods?.set(name, 'deleted');
        });
      }
      if (!o.stateDir) await rm(workDir, { recursive: true, force: true });
    },
  };
}
