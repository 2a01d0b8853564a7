// What GitOps tools read from a LivePatch in each phase, with the readers
// their users run: kstatus from sigs.k8s.io/cli-utils (Flux, kpt) and the
// chart's Argo CD health.lua under gopher-lua, over objects read from the API
// server while the real controller drives a simulated fleet.
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../src/api/generated/types.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import { argoHealthOf, ensureReaders, kstatusOf, type Readers } from '../../lab/readers/readers.js';
import { waitUntil } from '../../lab/wait.js';
import { kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, applyLivePatchSpec, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const HEALTH_LUA = join(
  repositoryRoot(),
  'charts',
  'livepatch-operator',
  'files',
  'argocd',
  'health.lua',
);
const cluster = useOwnCluster({ nodes: 3, kernels: [KERNEL], prefix: 'health' });
let readers: Readers;

beforeAll(async () => {
  readers = await ensureReaders(createLogger({ component: 'readers', level: 'error' }));
}, 600_000);

/** kstatus's reading and Argo CD's health of one object, and their messages. */
async function read(lp: LivePatch): Promise<{ kstatus: string; argo: string; says: string[] }> {
  const [k, a] = await Promise.all([kstatusOf(readers, lp), argoHealthOf(readers, HEALTH_LUA, lp)]);
  return { kstatus: k.status, argo: a.status, says: [k.message, a.message] };
}

/** The LivePatch once the controller has acted on its generation and it stands in this phase. */
function phase(name: string, want: string): Promise<LivePatch> {
  return waitUntil(
    `${name} to reach ${want}`,
    () => getLivePatch(name),
    (lp) => lp.status?.phase === want && lp.status.observedGeneration === lp.metadata.generation,
    60_000,
  );
}

const slow = (seconds: number): Promise<string> =>
  kubectlOk([
    'annotate',
    'nodes',
    '-l',
    'livepatch.io/simulated=true',
    '--overwrite',
    `sim.livepatch.io/transition-seconds=${seconds}`,
  ]);

describe('kstatus and Argo CD read each phase', () => {
  test('applied, before the controller has acted on it, reads InProgress/Progressing', async () => {
    await slow(2);
    await applyLivePatch('roll', { kernel: KERNEL, spec: { rollout: { maxUnavailable: 1 } } });
    expect(await read(await getLivePatch('roll'))).toMatchObject({
      kstatus: 'InProgress',
      argo: 'Progressing',
    });
  });

  test('Progressing reads InProgress/Progressing; Complete reads Current/Healthy once kubectl wait returns', async () => {
    await cluster().startController('health-controller');
    expect(await read(await phase('roll', 'Progressing'))).toMatchObject({
      kstatus: 'InProgress',
      argo: 'Progressing',
    });
    await kubectlOk(['wait', '--for=condition=Complete', 'lp/roll', '--timeout=60s']);
    const done = await read(await getLivePatch('roll'));
    expect(done).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });
    expect(done.says[1]).toBe('3/3 nodes patched');
    // A person reads the same news once: Ready repeats Complete on the status page.
    const page = await kubectlOk(['livepatch', 'status', 'roll']);
    expect(page).toContain('  Complete: RolloutComplete: 3/3 nodes patched');
    expect(page).not.toContain('Ready:');
  });

  test('Disabling reads InProgress until every node has unpatched, then Disabled reads Current', async () => {
    await kubectlOk(['patch', 'lp', 'roll', '--type=merge', '-p', '{"spec":{"state":"Disabled"}}']);
    expect(await read(await phase('roll', 'Disabling'))).toMatchObject({
      kstatus: 'InProgress',
      argo: 'Progressing',
    });
    const disabled = await phase('roll', 'Disabled');
    expect(disabled.status?.nodes?.patched).toBe(0);
    expect(await read(disabled)).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });
  });

  test('Paused reads InProgress/Suspended', async () => {
    await applyLivePatch('hold', { kernel: KERNEL, spec: { rollout: { paused: true } } });
    expect(await read(await phase('hold', 'Paused'))).toMatchObject({
      kstatus: 'InProgress',
      argo: 'Suspended',
    });
  });

  test('Waiting (outside its maintenance window) reads InProgress/Suspended, saying when it opens', async () => {
    // Only on the day after tomorrow (UTC): closed now, whatever the hour.
    const day = new Date(Date.now() + 2 * 24 * 3600_000)
      .toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' })
      .toLowerCase();
    await applyLivePatch('later', {
      kernel: KERNEL,
      spec: { rollout: { window: { days: [day], startTime: '00:00', endTime: '24:00' } } },
    });
    const lp = await phase('later', 'Waiting');
    const reading = await read(lp);
    expect(reading).toMatchObject({ kstatus: 'InProgress', argo: 'Suspended' });
    for (const message of reading.says)
      expect(message).toContain(`it opens at ${lp.status?.window?.nextOpen ?? '?'}`);
  });

  test('Failed reads Failed/Degraded with what to do', async () => {
    // A second LivePatch for the same patchName does nothing: Failed, PatchNameInUse.
    const { spec } = await getLivePatch('hold');
    await applyLivePatchSpec('twin', { ...spec, rollout: { ...spec.rollout, paused: false } });
    const reading = await read(await phase('twin', 'Failed'));
    expect(reading).toMatchObject({ kstatus: 'Failed', argo: 'Degraded' });
    for (const message of reading.says)
      expect(message).toContain('LivePatch hold already rolls out');
  });

  test('abort: RollingBack reads InProgress/Degraded, RolledBack reads Failed/Degraded', async () => {
    await applyLivePatch('abort-me', { kernel: KERNEL, spec: { rollout: { maxUnavailable: 1 } } });
    await waitUntil(
      'abort-me to patch its first node',
      () => getLivePatch('abort-me'),
      (lp) => (lp.status?.nodes?.patched ?? 0) >= 1,
      60_000,
    );
    await kubectlOk(['livepatch', 'abort', 'abort-me']);
    expect(await read(await phase('abort-me', 'RollingBack'))).toMatchObject({
      kstatus: 'InProgress',
      argo: 'Degraded',
    });
    const rolledBack = await read(await phase('abort-me', 'RolledBack'));
    expect(rolledBack).toMatchObject({ kstatus: 'Failed', argo: 'Degraded' });
    for (const message of rolledBack.says)
      expect(message).toContain('kubectl livepatch retry abort-me');
  });

  test('Complete past a stalled node (stall.action Ignore) reads Current/Healthy, not Failed', async () => {
    await slow(1);
    const stuck = rolloutOrder('ignore', cluster().fleet.nodes)[0] ?? '';
    await kubectlOk(['annotate', 'node', stuck, 'sim.livepatch.io/stuck-tasks=1']);
    await applyLivePatch('ignore', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 3 }, stall: { timeout: '3s', action: 'Ignore' } },
    });
    const lp = await phase('ignore', 'Complete');
    await kubectlOk(['annotate', 'node', stuck, 'sim.livepatch.io/stuck-tasks-']);
    expect(lp.status?.conditions?.find((c) => c.type === 'NodesStalled')?.status).toBe('True');
    expect(await read(lp)).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });
  });

  test('being deleted reads Terminating/Progressing while nodes unpatch', async () => {
    await slow(3);
    await kubectlOk(['delete', 'lp', 'ignore', '--wait=false']);
    const deleting = await getLivePatch('ignore');
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    expect(await read(deleting)).toMatchObject({ kstatus: 'Terminating', argo: 'Progressing' });
  });
});
