// Maintenance windows on the real API server with the real controller and a
// simulated fleet, on the real clock: windows are computed from the time the
// test starts, in zones other than UTC, so nothing in the product is hooked.
// One LivePatch's window opens a little later (Asia/Kathmandu, UTC+05:45);
// another's closes at that same minute while a node still bakes
// (America/Los_Angeles); a third names a zone no one knows.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import { waitUntil } from '../../lab/wait.js';
import { kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, eventsFor, getLivePatch, nodeReports } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const NODES = 4;
const MINUTE = 60_000;
/** The window that opens later opens at least this long after the test starts: time to see it Waiting. */
const LEAD_MS = 20_000;
const cluster = useOwnCluster({ nodes: NODES, kernels: [KERNEL], prefix: 'window' });

/** The day (lowercase) and HH:MM an instant has on a zone's clock, read with Intl by the test itself. */
function clock(timeZone: string, at: number): { day: string; hhmm: string } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'long',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const part = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  return { day: part('weekday').toLowerCase(), hhmm: `${part('hour')}:${part('minute')}` };
}

const iso = (at: number): string => new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');

function phase(
  name: string,
  want: string,
  reason?: string,
  timeoutMs = 60_000,
): Promise<LivePatch> {
  return waitUntil(
    `${name} to be ${want}${reason ? ` (${reason})` : ''}`,
    () => getLivePatch(name),
    (lp) =>
      lp.status?.phase === want &&
      lp.status.observedGeneration === lp.metadata.generation &&
      (reason === undefined || reconciling(lp)?.reason === reason),
    timeoutMs,
  );
}

const reconciling = (lp: LivePatch): { reason: string; message: string } | undefined =>
  lp.status?.conditions?.find((c) => c.type === 'Reconciling');

/** Nodes whose LivePatchNode spec holds an entry of this LivePatch: the nodes the controller started. */
async function entries(name: string): Promise<string[]> {
  const list = await kubectlJson<{ items: LivePatchNode[] }>(['get', 'lpn']);
  return list.items
    .filter((n) => n.spec.patches?.some((p) => p.livePatch === name))
    .map((n) => n.metadata.name ?? '');
}

describe('maintenance windows', () => {
  test('the API server refuses a window that cannot be read, and says why', async () => {
    const bad = async (window: object): Promise<string> => {
      const result = await kubectl(
        ['apply', '--dry-run=server', '-f', '-'],
        JSON.stringify({
          apiVersion: 'livepatch.io/v1alpha1',
          kind: 'LivePatch',
          metadata: { name: 'bad-window' },
          spec: {
            patchName: 'livepatch_bad_window',
            kernels: [{ release: KERNEL, module: { hostPath: '/x.ko', sha256: 'a'.repeat(64) } }],
            rollout: { window },
          },
        }),
      );
      expect(result.code).not.toBe(0);
      return result.stderr;
    };
    expect(await bad({ startTime: '25:00', endTime: '04:00' })).toContain(
      'spec.rollout.window.startTime',
    );
    expect(await bad({ startTime: '02:00', endTime: '02:00' })).toContain(
      'startTime and endTime are equal: a window must have a length. For the whole day use 00:00 to 24:00',
    );
    expect(await bad({ days: ['funday'], startTime: '02:00', endTime: '04:00' })).toContain(
      'spec.rollout.window.days[0]',
    );
  });

  // Set by the first test of the rollout below, read by the rest: one timeline on the real clock.
  let began = 0;
  let opens = 0;
  let later = { day: '', hhmm: '' };
  let closing = { day: '', hhmm: '' };
  const kathmandu = 'Asia/Kathmandu';
  const la = 'America/Los_Angeles';

  test('closed now: nothing starts; Waiting with the next opening in status, the conditions, an Event and kubectl livepatch status', async () => {
    await cluster().startController('window-controller');
    began = Date.now();
    // A minute boundary is one in every zone: offsets are whole minutes.
    opens = Math.ceil((began + LEAD_MS) / MINUTE) * MINUTE;
    later = clock(kathmandu, opens);
    await applyLivePatch('opens-later', {
      kernel: KERNEL,
      spec: {
        rollout: {
          maxUnavailable: 2,
          window: {
            days: [later.day],
            startTime: later.hhmm,
            endTime: clock(kathmandu, opens + 3 * MINUTE).hhmm,
            timeZone: kathmandu,
          },
        },
      },
    });
    // Open since the minute before the test began, closing when the other opens; kured's short day names.
    closing = clock(la, Math.floor(began / MINUTE) * MINUTE - MINUTE);
    await applyLivePatch('closes-soon', {
      kernel: KERNEL,
      spec: {
        rollout: {
          maxUnavailable: 1,
          bakeTime: `${Math.ceil((opens - began) / 1000) + 12}s`,
          window: {
            days: [closing.day.slice(0, 3)],
            startTime: closing.hhmm,
            endTime: clock(la, opens).hhmm,
            timeZone: la,
          },
        },
      },
    });

    const waiting = await phase('opens-later', 'Waiting', 'OutsideWindow');
    const said = reconciling(waiting)?.message ?? '';
    expect(waiting.status?.window).toEqual({ open: false, nextOpen: iso(opens) });
    expect(said).toContain(`outside the maintenance window (${later.day} ${later.hhmm}-`);
    expect(said).toContain(`${NODES} node(s) wait to start; it opens at ${iso(opens)} (`);
    expect(said).toContain(`${later.hhmm} Asia/Kathmandu (UTC+05:45))`);
    expect(await entries('opens-later')).toEqual([]);
    expect(await eventsFor('opens-later')).toContainEqual({
      reason: 'OutsideWindow',
      message: said,
    });
    const page = await kubectlOk(['livepatch', 'status', 'opens-later']);
    expect(page).toContain(`  window: ${later.day} ${later.hhmm}-`);
    expect(page).toContain(`: closed, opens ${iso(opens)} (`);
  });

  test('an unknown time zone holds every start and says what to fix', async () => {
    await applyLivePatch('bad-zone', {
      kernel: KERNEL,
      spec: {
        rollout: {
          window: { startTime: '00:00', endTime: '24:00', timeZone: 'Mars/Olympus_Mons' },
        },
      },
    });
    const invalid = await phase('bad-zone', 'Waiting', 'InvalidWindow');
    expect(reconciling(invalid)?.message).toContain(
      'spec.rollout.window.timeZone "Mars/Olympus_Mons" is not a time zone this controller knows',
    );
    expect(invalid.status?.window).toBeUndefined();
    expect(await entries('bad-zone')).toEqual([]);
  });

  test('inside its window a node starts and bakes, past the minute the window closes', async () => {
    const baking = await waitUntil(
      'closes-soon to patch its first node',
      () => getLivePatch('closes-soon'),
      (lp) => (lp.status?.nodes?.patched ?? 0) === 1,
      30_000,
    );
    expect(baking.status?.window).toMatchObject({ open: true, closesAt: iso(opens) });
    expect(Date.now()).toBeLessThan(opens);
    // Just before the other window opens, still no node of it started.
    await new Promise((r) => setTimeout(r, Math.max(0, opens - 1500 - Date.now())));
    expect(await entries('opens-later')).toEqual([]);
  });

  test('the window closes: the baking node goes on, and the message says what holds the next start', async () => {
    const held = await waitUntil(
      'closes-soon to see its window closed while its node bakes',
      () => getLivePatch('closes-soon'),
      (lp) => lp.status?.window?.open === false,
      10_000,
    );
    expect(held.status?.phase).toBe('Progressing');
    expect(reconciling(held)).toMatchObject({ reason: 'NodesInFlight' });
    expect(reconciling(held)?.message).toContain('1 baking; the maintenance window is closed');
  });

  test('the window opens: every node starts, none before the opening by its own clock', async () => {
    const done = await phase('opens-later', 'Complete');
    expect(done.status?.window).toMatchObject({ open: true, closesAt: iso(opens + 3 * MINUTE) });
    const reports = [...(await nodeReports('opens-later')).values()];
    expect(reports).toHaveLength(NODES);
    for (const r of reports) expect(Date.parse(r?.patchedTime ?? '')).toBeGreaterThanOrEqual(opens);
  });

  test('the bake ends: nothing more starts, Waiting until the same day and time next week', async () => {
    const rested = await phase('closes-soon', 'Waiting', 'OutsideWindow', 30_000);
    expect(rested.status?.nodes).toMatchObject({ patched: 1, pending: NODES - 1 });
    const started = await entries('closes-soon');
    expect(started).toHaveLength(1);
    expect((await nodeReports('closes-soon')).get(started[0] ?? '')?.taintAfterBake).toBeDefined();
    const next = Date.parse(rested.status?.window?.nextOpen ?? '');
    expect(next).toBeGreaterThan(opens);
    expect(clock(la, next)).toEqual(closing);
  });
});
