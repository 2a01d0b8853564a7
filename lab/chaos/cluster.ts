// The real parts a scenario runs: a control plane (API server and etcd, each
// restartable), controller replicas, the fleet simulator and standalone agents
// as separate processes of the built `livepatch-operator`, each node's state
// and simulated kernel in a folder the suite reads as evidence.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_KERNEL_FILE } from '../../agent/kernel/sim/sim-state-file.js';
import { LABELS } from '../../src/api/constants.js';
import { nodeName } from '../../src/api/names.js';
import { loadKubeConfig, type KubeConfig } from '../../src/kube/config.js';
import { startControlPlane, type LocalControlPlane } from '../controlplane/controlplane.js';
import { registerNode } from '../controlplane/nodes.js';
import { createLogger } from '../../src/log.js';
import { runOperator, type Running } from '../operator-process.js';
import { KERNEL } from './api.js';

export interface ChaosCluster {
  readonly plane: LocalControlPlane;
  readonly kc: KubeConfig;
  /** The simulated kernel file of a node, written by its agent (fleet or standalone). */
  kernelFile(node: string): string;
  startController(identity: string): Running;
  /** A fleet process of `count` nodes named PREFIX-000…; resolves once its agents run. */
  startFleet(prefix: string, count: number): Promise<{ proc: Running; nodes: string[] }>;
  /** Node objects for standalone agents. */
  registerNodes(names: readonly string[]): Promise<void>;
  /** A standalone agent process for one node (its state and kernel in its own folder). */
  startAgent(node: string): Running;
  stop(): Promise<void>;
}

export async function startChaosCluster(): Promise<ChaosCluster> {
  const log = createLogger({ component: 'chaos-controlplane', format: 'text', level: 'error' });
  const plane = await startControlPlane({ log });
  const kc = loadKubeConfig(plane.kubeconfig);
  const stateDir = await mkdtemp(join(tmpdir(), 'livepatch-chaos-'));
  const processes: Running[] = [];
  const track = (r: Running): Running => {
    processes.push(r);
    return r;
  };
  const nodeDir = (node: string): string => join(stateDir, node);
  return {
    plane,
    kc,
    kernelFile: (node) => join(nodeDir(node), SIM_KERNEL_FILE),
    startController: (identity) =>
      track(
        runOperator([
          'controller',
          `--kubeconfig=${plane.kubeconfig}`,
          `--identity=${identity}`,
          '--metrics-port=0',
        ]),
      ),
    startFleet: async (prefix, count) => {
      const proc = track(
        runOperator(
          [
            'fleet',
            `--kubeconfig=${plane.kubeconfig}`,
            `--nodes=${count}`,
            `--kernel=${KERNEL}`,
            `--prefix=${prefix}`,
            `--state-dir=${stateDir}`,
          ],
          { LOG_LEVEL: 'warn' },
        ),
      );
      await proc.waitFor(/fleet ready/, 60_000);
      const nodes = Array.from(
        { length: count },
        (_, i) => `${prefix}-${String(i).padStart(3, '0')}`,
      );
      return { proc, nodes };
    },
    registerNodes: async (names) => {
      for (const name of names)
        await registerNode(kc, {
          name: nodeName(name),
          release: KERNEL,
          labels: { [LABELS.simulatedNode]: 'true' },
          providerID: `livepatch-sim://${name}`,
          osImage: 'Simulated Linux',
        });
    },
    startAgent: (node) =>
      track(
        runOperator([
          'agent',
          '--backend=simulator',
          `--kubeconfig=${plane.kubeconfig}`,
          `--node=${node}`,
          `--state-dir=${nodeDir(node)}`,
          `--module-dir=${join(nodeDir(node), 'modules')}`,
          '--metrics-port=0',
        ]),
      ),
    stop: async () => {
      for (const p of processes) {
        p.child.kill('SIGCONT');
        await p.stop('SIGKILL');
      }
      await plane.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
