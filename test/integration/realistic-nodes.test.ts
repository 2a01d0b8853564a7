// The benchmark's realistic Nodes, as the API server stores and serves them: a
// cloud kubelet's size (10–30 KB with managedFields), its zones and images; and
// what the controller keeps of one, a small fraction of it.
import { afterAll, describe, expect, test } from '@jest/globals';
import { nodeName } from '../../src/api/names.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { nodeEssentials, type NodeObject } from '../../src/kube/resources.js';
import { registerNode } from '../../lab/controlplane/nodes.js';
import { kubeconfigPath, kubectlJson, kubectlOk } from '../support/kubectl.js';

const NAMES = [0, 1, 2].map((i) => nodeName(`shape-${i}`));

interface ServedNode extends NodeObject {
  metadata: NodeObject['metadata'] & { managedFields?: unknown[] };
  status: NonNullable<NodeObject['status']> & { images?: unknown[] };
}

afterAll(async () => {
  await kubectlOk(['delete', 'node', ...NAMES, '--ignore-not-found']);
});

describe('realistic Nodes for the benchmark', () => {
  test('weigh what a cloud kubelet makes them weigh, and the controller keeps little of them', async () => {
    const kc = loadKubeConfig(kubeconfigPath());
    for (const [i, name] of NAMES.entries())
      await registerNode(kc, {
        name,
        release: '6.1.0-26-amd64',
        labels: {},
        providerID: `livepatch-sim://${name}`,
        osImage: 'Simulated Linux',
        realisticIndex: i,
      });
    const served = await kubectlJson<{ items: ServedNode[] }>([
      'get',
      'nodes',
      ...NAMES,
      '-o',
      'json',
      '--show-managed-fields',
    ]);
    expect(served.items).toHaveLength(3);
    const zones = new Set(
      served.items.map((n) => n.metadata.labels?.['topology.kubernetes.io/zone']),
    );
    expect(zones.size).toBe(3);
    for (const node of served.items) {
      const bytes = JSON.stringify(node).length;
      expect(bytes).toBeGreaterThan(10_000);
      expect(bytes).toBeLessThan(30_000);
      expect(node.metadata.managedFields?.length).toBeGreaterThan(0);
      expect(node.status.images).toHaveLength(40);
      expect(node.status.nodeInfo?.kernelVersion).toBe('6.1.0-26-amd64');
      expect(node.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(JSON.stringify(nodeEssentials(node)).length).toBeLessThan(bytes / 10);
    }
  });
});
