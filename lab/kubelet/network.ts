// The harness's network, inside a network namespace of its own (nothing of
// the machine's network changes): the kubernetes Service's ClusterIP as a
// local address where the API server listens (there is no kube-proxy, and
// in-cluster config reads KUBERNETES_SERVICE_HOST=10.0.0.1, port 443), one
// address per node for its kubelet, and per node a CNI bridge network with
// host-local addresses, as a plain cluster without an overlay runs Pods.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../command.js';

export const SERVICE_IP = '10.0.0.1';

/** Node `index` (0-based): its kubelet's address and its Pods' subnet. */
export function nodeAddresses(index: number): { nodeIP: string; podSubnet: string } {
  if (index > 250) throw new Error('the harness has room for 251 nodes');
  return { nodeIP: `10.250.0.${index + 1}`, podSubnet: `10.244.${index + 1}.0/24` };
}

/** In this process's own network namespace: loopback, the Service IP and every node's address. */
export async function setUpClusterNetwork(nodes: number): Promise<void> {
  await runCommand('ip', ['link', 'set', 'lo', 'up']);
  await runCommand('ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo']);
  for (let i = 0; i < nodes; i++)
    await runCommand('ip', ['addr', 'add', `${nodeAddresses(i).nodeIP}/32`, 'dev', 'lo']);
}

/** The CNI configuration of node `index` in `dir`: a bridge of its own, addresses from its subnet. */
export async function writeCniConfig(dir: string, index: number, stateDir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const config = {
    cniVersion: '0.4.0',
    name: `pods-${index}`,
    plugins: [
      {
        type: 'bridge',
        bridge: `lpbr${index}`,
        isGateway: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: nodeAddresses(index).podSubnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: stateDir,
        },
      },
    ],
  };
  await writeFile(join(dir, '10-bridge.conflist'), JSON.stringify(config, null, 2));
}
