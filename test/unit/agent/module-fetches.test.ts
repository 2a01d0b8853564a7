// The agent's background fetches with a fetcher the test settles by hand:
// which fetches count, when the loop must wake for a retry, and which
// outcomes are announced.
import { describe, expect, test } from '@jest/globals';
import { DEFAULT_RETRY_POLICY, type FetchState } from '../../../agent/module/fetch-retry.js';
import { ModuleSourceError } from '../../../agent/module/module-errors.js';
import { ModuleFetches } from '../../../agent/module/module-fetches.js';
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';

const ENABLED: DesiredPatch = {
  livePatch: 'cve-a' as LivePatchName,
  patchName: 'livepatch_a' as PatchName,
  state: 'Enabled',
  module: { url: 'http://mirror.example/a.ko', sha256: 'a'.repeat(64) },
  generation: 1,
  stallTimeout: '60s',
  allowForce: false,
};
const DISABLED: DesiredPatch = { ...ENABLED, state: 'Disabled' };

/** A fetcher whose attempts stay open until the test settles them, and what was announced. */
function harness(): {
  fetches: ModuleFetches;
  clock: ManualClock;
  settled: FetchState[];
  attempts: { resolve: (path: string) => void; reject: (err: Error) => void }[];
} {
  const clock = new ManualClock();
  const settled: FetchState[] = [];
  const attempts: { resolve: (path: string) => void; reject: (err: Error) => void }[] = [];
  const fetches = new ModuleFetches({
    fetch: () =>
      new Promise<string>((resolve, reject) => {
        attempts.push({ resolve, reject });
      }),
    clock,
    policy: DEFAULT_RETRY_POLICY,
    onSettled: (_entry, state) => settled.push(state),
  });
  return { fetches, clock, settled, attempts };
}

const mirrorDown = (): Error => new ModuleSourceError('the server answers HTTP 503', true);
/** Lets the fetcher's promise callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('module fetches', () => {
  test('a failed attempt waits, and the loop wakes when its retry is due', async () => {
    const { fetches, clock, settled, attempts } = harness();
    fetches.start(ENABLED);
    attempts[0]?.reject(mirrorDown());
    await settle();
    expect(settled.map((s) => s.kind)).toEqual(['waiting']);
    expect(fetches.view([ENABLED]).get(ENABLED.livePatch)?.kind).toBe('waiting');
    expect(fetches.nextRetryIn(clock.now())).toBe(DEFAULT_RETRY_POLICY.firstDelayMs);
  });

  test('an entry disabled while its fetch waits: forgotten, so no retry is due (the loop rests until its heartbeat, not 1 ms)', async () => {
    const { fetches, clock, attempts } = harness();
    fetches.start(ENABLED);
    attempts[0]?.reject(mirrorDown());
    await settle();
    expect(fetches.view([DISABLED]).size).toBe(0);
    clock.advance(10 * DEFAULT_RETRY_POLICY.maxDelayMs);
    expect(fetches.nextRetryIn(clock.now())).toBeUndefined();
  });

  test('an entry disabled while its fetch runs: the outcome is not announced', async () => {
    const { fetches, settled, attempts } = harness();
    fetches.start(ENABLED);
    fetches.view([DISABLED]);
    attempts[0]?.reject(mirrorDown());
    await settle();
    expect(settled).toEqual([]);
    expect(fetches.nextRetryIn(0)).toBeUndefined();
  });

  test('an entry disabled and enabled again while its old attempt runs: only the new attempt counts', async () => {
    const { fetches, settled, attempts } = harness();
    fetches.start(ENABLED);
    fetches.view([DISABLED]);
    fetches.view([ENABLED]);
    fetches.start(ENABLED);
    attempts[0]?.reject(mirrorDown());
    await settle();
    expect(settled).toEqual([]);
    expect(fetches.view([ENABLED]).get(ENABLED.livePatch)?.kind).toBe('fetching');
    attempts[1]?.resolve('/modules/a.ko');
    await settle();
    expect(settled).toEqual([{ kind: 'ready', path: '/modules/a.ko' }]);
  });
});
