// Steering a troubled rollout with `kubectl livepatch abort` and `retry`, as an
// operator does: the real API server, the real controller (killed mid-abort, a
// fresh one takes over from what is stored), a simulated fleet, and kubectl.
import { describe, expect, test } from '@jest/globals';
import type { Condition, LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const NAME = 'steer-me';
const cluster = useOwnCluster({ nodes: 6, kernels: [KERNEL], prefix: 'steer' });

const condition = (lp: LivePatch, type: string): Condition | undefined =>
  lp.status?.conditions?.find((c) => c.type === type);

function waitFor(what: string, ok: (lp: LivePatch) => boolean): Promise<LivePatch> {
  return waitUntil(`${NAME} ${what}`, () => getLivePatch(NAME), ok, 90_000);
}

/** A refusal: exit code 3, the reason on stderr, and not one byte of the LivePatch changed. */
async function expectRefused(args: string[], message: RegExp): Promise<void> {
  const before = (await getLivePatch(NAME)).metadata.resourceVersion;
  const result = await kubectl(['livepatch', ...args]);
  expect(result).toMatchObject({ code: 3, stdout: '' });
  expect(result.stderr).toMatch(message);
  expect((await getLivePatch(NAME)).metadata.resourceVersion).toBe(before);
}

const me = async (): Promise<string> =>
  (await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])).trim();

describe('kubectl livepatch abort and retry', () => {
  test('abort mid-rollout: every node unpatched, RolledBack with reason Aborted, also across a controller killed mid-abort', async () => {
    const first = await cluster().startController('steer-controller-1');
    // Slow transitions: the rollout is caught on its way, and so is the rollback.
    await kubectlOk([
      'annotate',
      'nodes',
      '--all',
      '--overwrite',
      'sim.livepatch.io/transition-seconds=3',
    ]);
    await applyLivePatch(NAME, { kernel: KERNEL, spec: { rollout: { maxUnavailable: 2 } } });
    await waitFor(
      'patching its second pair of nodes',
      (lp) =>
        lp.status?.phase === 'Progressing' &&
        (lp.status.nodes?.patched ?? 0) >= 1 &&
        (lp.status.nodes?.transitioning ?? 0) >= 1,
    );

    const out = await kubectlOk(['livepatch', 'abort', NAME]);
    expect(out).toContain(`livepatch.livepatch.io/${NAME} aborted: livepatch.io/abort=attempt-0.`);
    expect(out).toContain(`Watch it: kubectl livepatch status ${NAME} -w`);
    const rollingBack = await waitFor('rolling back', (lp) => lp.status?.phase === 'RollingBack');
    expect(rollingBack.metadata.annotations).toMatchObject({
      'livepatch.io/abort': 'attempt-0',
      'livepatch.io/requested-by': await me(),
    });
    expect(rollingBack.metadata.generation).toBe(1);

    // Mid-abort the controller dies; a fresh replica takes over from the LivePatch and the nodes alone.
    await first.stop('SIGKILL');
    await cluster().startController('steer-controller-2');
    const lp = await waitFor('RolledBack', (x) => x.status?.phase === 'RolledBack');

    expect(lp.status?.nodes).toMatchObject({ patched: 0, transitioning: 0 });
    expect(condition(lp, 'Degraded')).toMatchObject({ status: 'True', reason: 'Aborted' });
    expect(condition(lp, 'Degraded')?.message).toBe(
      `generation 1 aborted by ${await me()} (livepatch.io/abort): every node of the patch was reversed. To roll out again: kubectl livepatch retry ${NAME}`,
    );
    expect(condition(lp, 'Progressing')).toMatchObject({ status: 'False', reason: 'Aborted' });
    const reports = [...(await nodeReports(NAME)).values()].filter((r) => r !== undefined);
    expect(reports.length).toBeGreaterThanOrEqual(3);
    expect(reports.map((r) => r.phase)).toEqual(reports.map(() => 'Unpatched'));
    expect(reports.map((r) => r.enabled ?? false)).toEqual(reports.map(() => false));
    const entries = (await kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn'])).items.flatMap(
      (n) => n.spec.patches?.filter((p) => p.livePatch === NAME) ?? [],
    );
    expect(entries.map((e) => e.state)).toEqual(reports.map(() => 'Disabled'));

    const reasons = (await eventsFor(NAME)).map((e) => e.reason);
    expect(reasons.filter((r) => r === 'Aborted')).toHaveLength(1);
    expect(reasons).toContain('RollbackFinished');
    expect(reasons).not.toContain('RollbackStarted');
    expect(await kubectlOk(['livepatch', 'status', NAME])).toContain(
      `LivePatch ${NAME}: Enabled, RolledBack, 0/6 patched`,
    );
  });

  test('refused: abort of a RolledBack rollout changes nothing; a LivePatch that does not exist is named', async () => {
    await expectRefused(
      ['abort', NAME],
      new RegExp(
        `refused: ${NAME} is already RolledBack: no node has the patch. To roll out again: kubectl livepatch retry ${NAME}`,
      ),
    );
    const missing = await kubectl(['livepatch', 'retry', 'no-such-patch']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('livepatches.livepatch.io "no-such-patch" not found');
  });

  test('pause and resume keep it aborted: still RolledBack, no node patched again', async () => {
    const paused = await kubectlOk(['livepatch', 'pause', NAME]);
    expect(paused).toContain(
      `note: attempt 0 of ${NAME} is aborted (livepatch.io/abort): it stays rolled back whether paused or not. To roll out again: kubectl livepatch retry ${NAME}`,
    );
    await kubectlOk(['livepatch', 'resume', NAME]);
    const lp = await waitFor('to act on the resume', (x) => x.status?.observedGeneration === 3);
    expect(lp.status).toMatchObject({
      phase: 'RolledBack',
      nodes: { patched: 0, transitioning: 0 },
    });
    expect(condition(lp, 'Degraded')?.reason).toBe('Aborted');
    // Long enough for a rollout of maxUnavailable 2 to start nodes, were it rolling out.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const reports = [...(await nodeReports(NAME)).values()].filter((r) => r !== undefined);
    expect(reports.map((r) => r.phase)).toEqual(reports.map(() => 'Unpatched'));
    expect((await getLivePatch(NAME)).status?.phase).toBe('RolledBack');
    expect((await eventsFor(NAME)).filter((e) => e.reason === 'Aborted')).toHaveLength(1);
  });

  test('retry after RolledBack: a fresh rollout, a new generation, to Complete', async () => {
    const out = await kubectlOk(['livepatch', 'retry', NAME]);
    expect(out).toContain(
      `livepatch.livepatch.io/${NAME} retried: spec.rollout.attempt 1, generation 4. A fresh rollout after RolledBack`,
    );
    expect(out).toContain(`Watch it: kubectl livepatch status ${NAME} -w`);
    const lp = await waitFor('Complete', (x) => x.status?.phase === 'Complete');
    expect(lp.status).toMatchObject({ observedGeneration: 4, summary: '6/6' });
    expect(lp.spec.rollout.attempt).toBe(1);
    expect(lp.metadata.annotations?.['livepatch.io/abort']).toBeUndefined();
    expect(condition(lp, 'Degraded')).toMatchObject({ status: 'False', reason: 'Healthy' });
    const reports = [...(await nodeReports(NAME)).values()];
    expect(reports.map((r) => r?.phase)).toEqual(reports.map(() => 'Patched'));
    const retried = (await eventsFor(NAME)).find((e) => e.reason === 'RetryStarted');
    expect(retried?.message).toBe(
      `generation 4 is a fresh rollout after RolledBack (attempt 1, requested by ${await me()})`,
    );
  });

  test('refused: retry and abort of a Complete rollout (abort only with --rollback-complete)', async () => {
    await expectRefused(
      ['retry', NAME],
      new RegExp(
        `refused: ${NAME} is Complete: retry is for a rollout that RolledBack or Failed, or has nodes that stalled or failed; no targeted node stalled or failed, nothing to retry`,
      ),
    );
    await expectRefused(
      ['abort', NAME],
      new RegExp(
        `refused: ${NAME} is Complete: every targeted node has the patch. .* kubectl livepatch abort ${NAME} --rollback-complete`,
      ),
    );
  });

  test('abort --rollback-complete unpatches a Complete rollout, ends RolledBack, reason Aborted', async () => {
    const out = await kubectlOk(['livepatch', 'abort', NAME, '--rollback-complete']);
    expect(out).toContain('aborted: livepatch.io/abort=attempt-1.');
    const lp = await waitFor('RolledBack', (x) => x.status?.phase === 'RolledBack');
    expect(lp.status?.nodes).toMatchObject({ patched: 0, reverted: 6 });
    expect(condition(lp, 'Degraded')?.reason).toBe('Aborted');
    const reports = [...(await nodeReports(NAME)).values()];
    expect(reports.map((r) => r?.phase)).toEqual(reports.map(() => 'Unpatched'));
  });
});
