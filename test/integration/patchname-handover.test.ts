// A new build shipped as README says: delete the LivePatch that holds a
// patchName and at once apply another with the same patchName. The new one
// waits (Failed, PatchNameInUse, which its Events show) while the old one
// unpatches its nodes, and starts as soon as the old one is gone: within 5 s,
// in each of 20 cycles.
import { describe, expect, test } from '@jest/globals';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { applyLivePatchSpec, eventsFor, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { writeSimModule } from '../../lab/sim-modules.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const PATCH = 'livepatch_handover';
const CYCLES = 20;
const START_WITHIN_MS = 5_000;
const cluster = useOwnCluster({ nodes: 2, kernels: [KERNEL], prefix: 'handover' });

async function gone(name: string): Promise<boolean> {
  const r = await kubectl(['get', 'lp', name, '--ignore-not-found', '-o', 'name']);
  return r.stdout.trim() === '';
}

describe('a patchName handed from one LivePatch to the next', () => {
  test(`${CYCLES} delete-then-apply cycles: the new one starts within 5 s of the old one's deletion completing`, async () => {
    await cluster().startController('controller-handover');
    const module = await writeSimModule(PATCH, KERNEL);
    const spec = {
      patchName: PATCH,
      kernels: [{ release: KERNEL, module: { hostPath: module.hostPath, sha256: module.sha256 } }],
      rollout: { maxUnavailable: '100%' },
    };
    await applyLivePatchSpec('build-0', spec);
    await kubectlOk(['wait', '--for=condition=Complete', 'lp/build-0', '--timeout=60s']);
    const delays: number[] = [];
    const refused: boolean[] = [];
    for (let i = 1; i <= CYCLES; i++) {
      const [old, next] = [`build-${i - 1}`, `build-${i}`];
      await kubectlOk(['delete', 'lp', old, '--wait=false']);
      await applyLivePatchSpec(next, spec);
      const goneAt = (await waitUntil(
        `${old} gone`,
        () => gone(old),
        (g) => g,
        60_000,
        100,
      ))
        ? Date.now()
        : 0;
      const started = await waitUntil(
        `${next} started after ${old} was gone`,
        () => getLivePatch(next),
        (lp) => lp.status?.phase !== undefined && lp.status.phase !== 'Failed',
        30_000,
        100,
      );
      delays.push(Date.now() - goneAt);
      expect(started.status?.phase).not.toBe('Failed');
      refused.push((await eventsFor(next)).some((e) => e.reason === 'PatchNameInUse'));
      await kubectlOk(['wait', '--for=condition=Complete', `lp/${next}`, '--timeout=60s']);
    }
    process.stdout.write(
      `patchName handover: started ${delays.map((d) => (d / 1000).toFixed(1)).join(', ')} s after the old LivePatch was gone\n`,
    );
    // Each new one waited its turn rather than acting beside the old one on the same module.
    expect(refused).toEqual(Array<boolean>(CYCLES).fill(true));
    expect(delays.filter((d) => d > START_WITHIN_MS)).toEqual([]);
  }, 600_000);
});
