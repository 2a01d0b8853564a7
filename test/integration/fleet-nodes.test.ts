// Nodes that go dark, join or reboot, on the real API server, as a user sees
// them with kubectl: a silent NotReady node keeps `kubectl wait
// --for=condition=Complete` from returning and is named in status; deleting
// its Node lets the rollout complete; a node that joins afterwards is patched
// and counted; a node rebooted into the same kernel waits for a rollout slot,
// is patched again, and Events say so.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { nodeName, type NodeName } from '../../src/api/names.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster, type OwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const LP = 'dark';
const cluster = useOwnCluster({ nodes: 3, kernels: [KERNEL], prefix: 'dark' });

const completeCondition = (lp: LivePatch): NonNullable<LivePatch['status']>['conditions'] =>
  lp.status?.conditions?.filter((c) => c.type === 'Complete');

async function turnNotReady(node: string): Promise<void> {
  const now = new Date().toISOString();
  const notReady = {
    status: {
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'KubeletStopped',
          message: 'simulated: the node went dark',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    },
  };
  await kubectlOk([
    'patch',
    'node',
    node,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify(notReady),
  ]);
}

function waitForComplete(summary: string): Promise<LivePatch> {
  return waitUntil(
    `${LP} to be Complete at ${summary}`,
    () => getLivePatch(LP),
    (lp) => lp.status?.phase === 'Complete' && lp.status.summary === summary,
    90_000,
  );
}

/** A node reboots into the same kernel: its agent finds the kernel empty, waits for a slot, patches it again. */
async function rebootAndExpectRepatched(c: OwnCluster, rebooted: NodeName): Promise<void> {
  await c.fleet.reboot(rebooted);
  const events = await waitUntil(
    `${rebooted} to announce it was re-patched`,
    () => eventsFor(LP),
    (list) => list.some((e) => e.reason === 'NodeRepatched'),
    60_000,
  );
  const rebootedEvent = events.find((e) => e.reason === 'NodeRebooted');
  expect(rebootedEvent?.message).toContain(`node ${rebooted}: the node rebooted without the patch`);
  expect(events.find((e) => e.reason === 'NodeRepatched')?.message).toContain(`node ${rebooted}`);
  const lpn = await kubectlJson<LivePatchNode>(['get', 'lpn', rebooted]);
  expect(lpn.status?.bootID).toBe(`${rebooted}-boot-1`);
  expect(lpn.spec.patches?.[0]?.bootID).toBe(`${rebooted}-boot-1`);
  const report = (await nodeReports(LP)).get(rebooted);
  expect(report?.phase).toBe('Patched');
  expect(report?.message).toContain('the node rebooted without the patch: re-patched');
  expect(c.fleet.kernel(rebooted)).toBeDefined();
  expect(await c.fleet.kernel(rebooted)?.patches()).toEqual([
    expect.objectContaining({ name: `livepatch_${LP}`, enabled: true }),
  ]);
}

describe('nodes that go dark, join or reboot', () => {
  test('a dark node holds Complete back until its Node is deleted; a joining node and a rebooted one are patched without anyone acting', async () => {
    const c = cluster();
    await c.startController('dark-controller');
    const [dark, rebooted] = rolloutOrder(LP, c.fleet.nodes);
    if (!dark || !rebooted) throw new Error('the fleet has too few nodes');
    await c.fleet.stopAgent(dark);
    await turnNotReady(dark);
    await applyLivePatch(LP, { kernel: KERNEL, spec: { rollout: { maxUnavailable: 1 } } });

    // The two reachable nodes are patched; the dark one keeps the LivePatch from Complete.
    const waiting = await waitUntil(
      `${LP} to wait for ${dark} alone`,
      () => getLivePatch(LP),
      (lp) => completeCondition(lp)?.[0]?.reason === 'NodesUnreachable',
      90_000,
    );
    expect(waiting.status).toMatchObject({ phase: 'Progressing', summary: '2/3' });
    expect(waiting.status?.nodes).toMatchObject({ targeted: 3, patched: 2, unknown: 1 });
    const message = completeCondition(waiting)?.[0]?.message ?? '';
    expect(message).toContain(`${dark} (the node is not Ready)`);
    expect(message).toContain('delete its Node object');
    const held = await kubectl(['wait', '--for=condition=Complete', `lp/${LP}`, '--timeout=5s']);
    expect(held.code).not.toBe(0);
    expect((await eventsFor(LP)).map((e) => e.reason)).toContain('NodesUnreachable');

    // Letting the dead node go: delete its Node.
    await kubectlOk(['delete', 'node', dark]);
    await kubectlOk(['wait', '--for=condition=Complete', `lp/${LP}`, '--timeout=60s']);
    expect((await getLivePatch(LP)).status).toMatchObject({ summary: '2/2' });

    // A node joins after the rollout completed: patched, and counted.
    const joined = nodeName('dark-joined');
    await c.fleet.join(joined);
    const afterJoin = await waitForComplete('3/3');
    expect(afterJoin.status?.nodes).toMatchObject({ targeted: 3, patched: 3, unknown: 0 });
    expect((await nodeReports(LP)).get(joined)?.phase).toBe('Patched');

    // A node reboots into the same kernel: it is patched again in its turn.
    await rebootAndExpectRepatched(c, rebooted);
    await waitForComplete('3/3');
  });
});
