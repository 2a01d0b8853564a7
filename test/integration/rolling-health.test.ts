// Rolling pacing and the bake's health gate on the real API server, driven
// with kubectl: nodes with mixed transition times, a module that taints the
// kernel, and a node that turns NotReady while it bakes.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../src/api/generated/types.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const NODES = 8;
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'roll' });

function waitForPhase(name: string, phase: string): Promise<LivePatch> {
  return waitUntil(
    `${name} to reach ${phase}`,
    () => getLivePatch(name),
    (lp) => lp.status?.phase === phase,
    90_000,
  );
}

/** Clears every simulator annotation the previous test left, then sets these on one node. */
async function aim(node: string, annotations: string[]): Promise<void> {
  for (const key of ['transition-seconds', 'load-taint', 'load-error'])
    await kubectlOk([
      'annotate',
      'nodes',
      '-l',
      'livepatch.io/simulated=true',
      `sim.livepatch.io/${key}-`,
    ]);
  if (annotations.length)
    await kubectlOk(['annotate', 'node', node, '--overwrite', ...annotations]);
}

const firstNode = (livePatch: string): string =>
  rolloutOrder(livePatch, cluster().fleet.nodes)[0] ?? '';

describe('rolling pacing', () => {
  test('a slow node holds one slot while the fast ones stream past it through the other', async () => {
    await cluster().startController('roll-controller');
    const slow = firstNode('mixed');
    // The fast nodes take 1 s, the slow one 10 s: in lockstep waves of 2, one fast node would be done before it.
    await kubectlOk([
      'annotate',
      'nodes',
      '-l',
      'livepatch.io/simulated=true',
      '--overwrite',
      'sim.livepatch.io/transition-seconds=1',
    ]);
    await kubectlOk([
      'annotate',
      'node',
      slow,
      '--overwrite',
      'sim.livepatch.io/transition-seconds=10',
    ]);
    await applyLivePatch('mixed', { kernel: KERNEL, spec: { rollout: { maxUnavailable: 2 } } });
    await waitForPhase('mixed', 'Complete');
    const reports = await nodeReports('mixed');
    const patchedAt = (node: string): number => Date.parse(reports.get(node)?.patchedTime ?? '');
    const beforeSlow = [...reports.keys()].filter((n) => patchedAt(n) < patchedAt(slow));
    expect(beforeSlow.length).toBeGreaterThanOrEqual(4);
    expect([...reports.values()].every((r) => r?.phase === 'Patched')).toBe(true);
    const lp = await getLivePatch('mixed');
    expect(lp.status).toMatchObject({ phase: 'Complete', summary: `${NODES}/${NODES}` });
  });
});

describe('a busy kernel', () => {
  test('EBUSY on insmod (another tool loading a patch) keeps the node in flight, not Failed: no rollback, and it loads once the kernel lets it', async () => {
    const node = firstNode('busy');
    await aim(node, ['sim.livepatch.io/load-error=EBUSY']);
    await applyLivePatch('busy', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1 }, stall: { action: 'Rollback' }, failureBudget: 0 },
    });
    const waiting = await waitUntil(
      `${node} to answer EBUSY twice`,
      () => nodeReports('busy'),
      (r) => r.get(node)?.message?.includes('answered EBUSY') === true,
      60_000,
    );
    expect(waiting.get(node)?.phase).toBe('Loading');
    // Longer than the five insmod attempts over ~8 s after which a node used to be Failed.
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const still = await nodeReports('busy');
    expect(still.get(node)).toMatchObject({ phase: 'Loading' });
    expect(still.get(node)?.message).toContain('waiting: load livepatch_busy answered EBUSY');
    const lp = await getLivePatch('busy');
    expect(lp.status?.phase).not.toBe('Failed');
    expect(lp.status?.phase).not.toBe('RolledBack');
    expect(lp.status?.nodes).toMatchObject({ failed: 0 });
    await aim(node, []);
    await waitForPhase('busy', 'Complete');
    expect((await nodeReports('busy')).get(node)?.phase).toBe('Patched');
  });
});

describe('the health gate while a node bakes', () => {
  test('a module that taints the kernel (W) fails its node: taint before and after in status, an Event, Halt', async () => {
    const node = firstNode('tainting');
    await aim(node, ['sim.livepatch.io/load-taint=W']);
    await applyLivePatch('tainting', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1, bakeTime: '2s' }, stall: { action: 'Halt' } },
    });
    const lp = await waitForPhase('tainting', 'Failed');
    // OEK: the earlier rollout loaded an out-of-tree (O), unsigned (E) livepatch (K) here already; W is this module's.
    expect(lp.status?.unhealthyNodes).toEqual([
      expect.objectContaining({
        node,
        reason: 'KernelTainted',
        taintBefore: 'OEK',
        taintAfter: 'WOEK',
      }),
    ]);
    expect(lp.status?.nodes).toMatchObject({ failed: 1, patched: 0 });
    const events = await eventsFor('tainting');
    const unhealthy = events.find((e) => e.reason === 'NodeUnhealthy');
    expect(unhealthy?.message).toContain(`node ${node}: the kernel gained taint W`);
    const described = await kubectlOk(['describe', 'lp', 'tainting']);
    expect(described).toContain('KernelTainted');
    // Halt: nothing else started.
    const reports = await nodeReports('tainting');
    expect([...reports].filter(([, r]) => r).map(([n]) => n)).toEqual([node]);
  });

  test('a node that turns NotReady while it bakes fails, and Rollback unpatches it', async () => {
    const node = firstNode('not-ready');
    await aim(node, []);
    await applyLivePatch('not-ready', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1, bakeTime: '10m' } },
    });
    await waitUntil(
      `${node} to be Patched and baking`,
      () => nodeReports('not-ready'),
      (r) => r.get(node)?.phase === 'Patched',
      60_000,
    );
    const notReady = {
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'KernelDeadlock',
            message: 'simulated',
            lastHeartbeatTime: new Date().toISOString(),
            lastTransitionTime: new Date().toISOString(),
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
    const lp = await waitForPhase('not-ready', 'RolledBack');
    expect(lp.status?.unhealthyNodes).toEqual([
      expect.objectContaining({ node, reason: 'NodeNotReady' }),
    ]);
    expect(lp.status?.unhealthyNodes?.[0]?.message).toContain('turned NotReady while baking');
  });
});
