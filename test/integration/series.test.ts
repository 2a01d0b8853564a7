// Two LivePatches of one series on a simulated fleet, driven like a user
// would: the newer build rolls out first, then the older one is applied (an
// older build reaching nodes after a newer one, which the kernel alone would
// let win). It must end Complete without loading anywhere, its nodes
// Replaced by the newer LivePatch; deleting the newer one then loads the
// older build again, node by node within maxUnavailable.
import { describe, expect, test } from '@jest/globals';
import { kubectlOk } from '../support/kubectl.js';
import {
  applyLivePatchSpec,
  getLivePatch,
  IN_TRANSITION,
  nodeReports,
} from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const NODES = 4;
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'series' });

async function member(name: string, patchName: string, sequence: number): Promise<void> {
  const module = await writeSimModule(patchName, KERNEL, true);
  await applyLivePatchSpec(name, {
    patchName,
    series: { name: 'cmdline', sequence },
    kernels: [{ release: KERNEL, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
    rollout: { maxUnavailable: 1 },
  });
}

const phases = async (livePatch: string): Promise<(string | undefined)[]> =>
  [...(await nodeReports(livePatch)).values()].map((p) => p?.phase);

describe('a series of cumulative builds on a fleet', () => {
  test('an older member applied after the newer one never loads; deleting the newer one falls back, paced', async () => {
    await cluster().startController('controller-series');
    await member('cmdline-2', 'livepatch_cmdline_v2', 2);
    await kubectlOk(['wait', '--for=condition=Complete', 'lp/cmdline-2', '--timeout=90s']);

    await member('cmdline-1', 'livepatch_cmdline_v1', 1);
    const older = await waitUntil(
      'cmdline-1 complete, superseded on every node',
      () => getLivePatch('cmdline-1'),
      (lp) => lp.status?.phase === 'Complete' && lp.status.nodes?.replaced === NODES,
      60_000,
      200,
    );
    expect(older.status?.supersededBy).toEqual([{ livePatch: 'cmdline-2', nodes: NODES }]);
    expect(await phases('cmdline-1')).toEqual(Array(NODES).fill('Replaced'));
    expect(await phases('cmdline-2')).toEqual(Array(NODES).fill('Patched'));
    for (const report of (await nodeReports('cmdline-1')).values()) {
      expect(report?.replacedBy).toBe('cmdline-2');
      expect(report?.enabled).toBeUndefined();
    }

    await kubectlOk(['delete', 'lp', 'cmdline-2', '--wait=false']);
    let most = 0;
    const back = await waitUntil(
      'cmdline-1 patched again on every node',
      async () => {
        const now = await phases('cmdline-1');
        most = Math.max(most, now.filter((p) => p !== undefined && IN_TRANSITION.has(p)).length);
        return getLivePatch('cmdline-1');
      },
      (lp) => lp.status?.nodes?.patched === NODES,
      120_000,
      100,
    );
    expect(back.status).toMatchObject({ phase: 'Complete', summary: `${NODES}/${NODES}` });
    expect(back.status?.supersededBy).toBeUndefined();
    expect(most).toBeLessThanOrEqual(1);
    expect(await phases('cmdline-1')).toEqual(Array(NODES).fill('Patched'));
  }, 300_000);

  test('a second LivePatch with the same series and sequence does nothing and says why', async () => {
    await member('cmdline-1-again', 'livepatch_cmdline_v1b', 1);
    const twin = await waitUntil(
      'cmdline-1-again refused',
      () => getLivePatch('cmdline-1-again'),
      (lp) => lp.status?.phase === 'Failed',
      30_000,
      200,
    );
    const progressing = twin.status?.conditions?.find((c) => c.type === 'Progressing');
    expect(progressing?.reason).toBe('SeriesSequenceInUse');
    expect(progressing?.message).toContain(
      'Give it another spec.series.sequence, or delete cmdline-1',
    );
    expect([...(await nodeReports('cmdline-1-again')).values()].filter(Boolean)).toEqual([]);
    expect(await phases('cmdline-1')).toEqual(Array(NODES).fill('Patched'));
  }, 60_000);
});
