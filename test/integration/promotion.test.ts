// Promoting a canary by hand with `kubectl livepatch promote`, as an operator
// does: the real API server, the real controller, a simulated fleet, and the
// built plugin run by kubectl.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../src/api/generated/types.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const NAME = 'canary';
const cluster = useOwnCluster({ nodes: 8, kernels: [KERNEL], prefix: 'promo' });
const STEPS = [{ nodes: 1 }, { pause: {} }, { nodes: 3 }, { pause: {} }, { percent: 75 }];

function waitFor(what: string, ok: (lp: LivePatch) => boolean): Promise<LivePatch> {
  return waitUntil(`${NAME} ${what}`, () => getLivePatch(NAME), ok, 90_000);
}

const heldAt = (index: number) => (lp: LivePatch) =>
  lp.status?.phase === 'Paused' && lp.status.currentStep === index;

const me = async (): Promise<string> =>
  (await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])).trim();

const promotedEvents = async (): Promise<string[]> =>
  (await eventsFor(NAME)).filter((e) => e.reason === 'Promoted').map((e) => e.message);

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('kubectl livepatch promote', () => {
  let firstValue = '';

  test('held at the first pause, status says how to promote; promote moves it to the next pause and no further', async () => {
    await cluster().startController('promo-controller');
    await applyLivePatch(NAME, {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 2, steps: STEPS } },
    });
    const held = await waitFor('held at the first pause', heldAt(1));
    expect(held.status?.summary).toBe('1/8');
    const since = held.status?.currentStepStartTime ?? '';
    expect(await kubectlOk(['livepatch', 'status', NAME])).toContain(
      `  step: 2 of 5 (pause), held since ${since}. To end it: kubectl livepatch promote ${NAME}; ` +
        `to skip every remaining step: kubectl livepatch promote ${NAME} --full`,
    );

    const out = await kubectlOk(['livepatch', 'promote', NAME]);
    firstValue = `attempt-0/step-2@${since}`;
    expect(out).toContain(
      `livepatch.livepatch.io/${NAME} promoted: livepatch.io/promote=${firstValue}. The controller ends pause ` +
        'step 2 (that one only) and goes on with step 3 (nodes 3); a later pause step holds again.',
    );
    const second = await waitFor('held at the second pause', heldAt(3));
    expect(second.status?.summary).toBe('3/8');
    expect(second.metadata.annotations).toMatchObject({
      'livepatch.io/promote': firstValue,
      'livepatch.io/requested-by': await me(),
    });
    expect(second.status?.promotion).toMatchObject({
      attempt: 0,
      step: 2,
      requestedBy: await me(),
    });
    // Long enough for two more nodes to start, were the second pause not holding.
    await settle(3000);
    expect((await getLivePatch(NAME)).status).toMatchObject({
      phase: 'Paused',
      currentStep: 3,
      summary: '3/8',
    });
    expect(await promotedEvents()).toEqual([
      `pause step 2 of attempt 0 promoted by ${await me()}: it holds the rollout no longer; the next steps apply as written`,
    ]);
  });

  test('the old promotion written again (a stale or repeated promote) does nothing', async () => {
    await kubectlOk(['annotate', 'lp', NAME, 'livepatch.io/promote-']);
    await kubectlOk(['annotate', 'lp', NAME, `livepatch.io/promote=${firstValue}`]);
    await settle(3000);
    expect((await getLivePatch(NAME)).status).toMatchObject({
      phase: 'Paused',
      currentStep: 3,
      summary: '3/8',
    });
    expect(await promotedEvents()).toHaveLength(1);
  });

  test('promote --full skips every remaining step: Complete, every node patched', async () => {
    const out = await kubectlOk(['livepatch', 'promote', NAME, '--full']);
    expect(out).toContain(
      `livepatch.livepatch.io/${NAME} promoted in full: livepatch.io/promote=attempt-0/full. The controller ` +
        'skips every remaining step of attempt 0, pauses included',
    );
    const lp = await waitFor('Complete', (x) => x.status?.phase === 'Complete');
    expect(lp.status).toMatchObject({ summary: '8/8', currentStep: STEPS.length });
    expect(lp.status?.promotion).toMatchObject({ attempt: 0, full: true, requestedBy: await me() });
    expect(await promotedEvents()).toEqual(
      expect.arrayContaining([
        `attempt 0 promoted in full by ${await me()}: every remaining step skipped, the rollout goes on to every targeted node, at most 2 at a time`,
      ]),
    );
    expect(await promotedEvents()).toHaveLength(2);
  });

  test('refused once Complete: exit 3, the reason, nothing written', async () => {
    const before = (await getLivePatch(NAME)).metadata.resourceVersion;
    const result = await kubectl(['livepatch', 'promote', NAME]);
    expect(result).toMatchObject({ code: 3, stdout: '' });
    expect(result.stderr).toContain(
      `refused: ${NAME} is Complete: every targeted node has the patch, nothing to promote`,
    );
    expect((await getLivePatch(NAME)).metadata.resourceVersion).toBe(before);
  });
});
