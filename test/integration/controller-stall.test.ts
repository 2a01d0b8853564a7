// A node whose transition stalls, under each stall.action: what the user sees
// in `kubectl get`, the status, the conditions and the Events.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const cluster = useOwnCluster({ nodes: 6, kernels: [KERNEL], prefix: 'stall' });

/** Makes the first node the rollout will pick stall, as a vCPU thread in guest mode would. */
async function stuckFirstNode(livePatch: string): Promise<string> {
  const first = rolloutOrder(livePatch, cluster().fleet.nodes)[0] ?? '';
  await kubectlOk([
    'annotate',
    'nodes',
    '-l',
    'livepatch.io/simulated=true',
    'sim.livepatch.io/stuck-tasks-',
  ]);
  await kubectlOk(['annotate', 'node', first, 'sim.livepatch.io/stuck-tasks=1']);
  return first;
}

function waitForPhase(name: string, phase: string): Promise<LivePatch> {
  return waitUntil(
    `${name} to reach ${phase}`,
    () => getLivePatch(name),
    (lp) => lp.status?.phase === phase,
    90_000,
  );
}

const condition = (
  lp: LivePatch,
  type: string,
): { status: string; reason: string; message: string } | undefined =>
  lp.status?.conditions?.find((c) => c.type === type);

describe('stall policy', () => {
  test('Rollback: a stuck node reverses every node, ends RolledBack, and names the blocking task', async () => {
    await cluster().startController('stall-controller');
    const stuck = await stuckFirstNode('rollback-me');
    await applyLivePatch('rollback-me', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2 }, stall: { timeout: '3s' } },
    });
    const lp = await waitForPhase('rollback-me', 'RolledBack');

    expect(lp.status?.stalledNodes).toEqual([
      expect.objectContaining({
        node: stuck,
        blockingTasks: [expect.objectContaining({ comm: 'qemu-kvm' })],
      }),
    ]);
    expect(lp.status?.nodes).toMatchObject({ patched: 0, stalled: 1 });
    const degraded = condition(lp, 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(degraded?.message).toContain(`${stuck} (blocked by qemu-kvm[`);
    expect(condition(lp, 'Complete')?.status).toBe('False');

    const reports = await nodeReports('rollback-me');
    const phases = [...reports].filter(([, r]) => r).map(([node, r]) => [node, r?.phase]);
    expect(phases).toContainEqual([stuck, 'Stalled']);
    expect(
      phases.filter(([node]) => node !== stuck).every(([, phase]) => phase === 'Unpatched'),
    ).toBe(true);

    const events = await eventsFor('rollback-me');
    const stalled = events.find((e) => e.reason === 'NodeStalled');
    expect(stalled?.message).toContain(stuck);
    expect(stalled?.message).toContain('qemu-kvm');
    expect(events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['RollbackStarted', 'RollbackFinished']),
    );
    const perNode = await kubectlOk(['livepatch', 'status', 'rollback-me']);
    expect(perNode).toContain('LivePatch rollback-me: Enabled, RolledBack, 0/6 patched');
    expect(perNode).toMatch(
      new RegExp(`${stuck}\\s+${KERNEL.replaceAll('.', '\\.')}\\s+Stalled\\s+qemu-kvm\\[`),
    );
    const row = (await kubectlOk(['get', 'lp', 'rollback-me', '--no-headers'])).trim().split(/\s+/);
    expect(row.slice(0, 6)).toEqual(['rollback-me', 'Enabled', 'RolledBack', '0/6', '0', '1']);
  });

  test('Halt: the stalled node is reversed, no new node starts, the rollout ends Failed with the reason', async () => {
    // Started = the controller wrote the node's entry (before it wrote Failed).
    const startedNodes = async (): Promise<string[]> =>
      (await kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn'])).items
        .filter((n) => n.spec.patches?.some((p) => p.livePatch === 'halt-me'))
        .map((n) => n.metadata.name ?? '');
    const stuck = await stuckFirstNode('halt-me');
    await applyLivePatch('halt-me', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2 }, stall: { timeout: '3s', action: 'Halt' } },
    });
    const lp = await waitForPhase('halt-me', 'Failed');
    expect(condition(lp, 'Degraded')).toMatchObject({ status: 'True', reason: 'Halted' });
    expect(condition(lp, 'Degraded')?.message).toContain('stall.action Halt: no new node starts');
    // Rolling: the other slot went on patching while the stuck node stalled; from the halt on, nothing starts.
    const atHalt = await startedNodes();
    expect(atHalt.length).toBeLessThan(6);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await startedNodes()).toEqual(atHalt);
    const reports = await nodeReports('halt-me');
    expect(reports.get(stuck)?.phase).toBe('Stalled');
    expect((await getLivePatch('halt-me')).status).toMatchObject({
      phase: 'Failed',
      summary: `${atHalt.length - 1}/6`,
    });
    expect((await eventsFor('halt-me')).map((e) => e.reason)).toContain('Halted');
  });

  test('Ignore: the stalled node is reversed and the rollout goes on to Complete', async () => {
    const stuck = await stuckFirstNode('ignore-me');
    await applyLivePatch('ignore-me', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 3 }, stall: { timeout: '3s', action: 'Ignore' } },
    });
    const lp = await waitForPhase('ignore-me', 'Complete');
    expect(lp.status).toMatchObject({
      summary: '5/6',
      nodes: expect.objectContaining({ patched: 5, stalled: 1 }),
    });
    expect(lp.status?.stalledNodes?.map((s) => s.node)).toEqual([stuck]);
    expect(condition(lp, 'NodesStalled')).toMatchObject({ status: 'True', reason: 'NodesStalled' });
  });

  test('failureBudget: one stalled node within the budget does not fire Rollback', async () => {
    await stuckFirstNode('budget-me');
    await applyLivePatch('budget-me', {
      kernel: KERNEL,
      spec: {
        rollout: { maxUnavailable: 3 },
        stall: { timeout: '3s', action: 'Rollback' },
        failureBudget: 1,
      },
    });
    const lp = await waitForPhase('budget-me', 'Complete');
    expect(lp.status?.nodes).toMatchObject({ patched: 5, stalled: 1 });
    expect((await eventsFor('budget-me')).map((e) => e.reason)).not.toContain('RollbackStarted');
  });
});
