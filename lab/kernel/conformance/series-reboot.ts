// Two members of one series (spec.series) on one node, across a reboot: the
// agent's own decisions (agent/pass/node-machine.ts) drive the lab's kernel,
// with the builds arriving in either order, then the node boots again with
// the same kernel and the same entries and the agent's memory of what it
// reported. The kernel lets whichever build loads last win, so only the
// declared order keeps the newest running. Each phase is a scenario result,
// on a VM's real kernel (series-in-vm.ts) and on the simulator alike.
import { readKernel } from '../../../agent/pass/kernel-view.js';
import { decideNode } from '../../../agent/pass/node-machine.js';
import type { FetchState } from '../../../agent/module/fetch-retry.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../../../src/api/names.js';
import { createLogger } from '../../../src/log.js';
import { entryText, eventually, Trace, type Lab, type TestModule } from './lab.js';
import type { ScenarioResult } from './scenarios.js';

export const ARRIVAL_ORDERS = ['older-first', 'newer-first'] as const;
export type ArrivalOrder = (typeof ARRIVAL_ORDERS)[number];
/** Before the reboot (the builds arrive one after the other), and after it (both entries there). */
export type RebootPhase = 'arrival' | 'rebooted';

interface Member {
  readonly livePatch: LivePatchName;
  readonly patchName: PatchName & TestModule;
  readonly sequence: number;
}

const OLDER: Member = {
  livePatch: 'cmdline-1' as LivePatchName,
  patchName: 'lpt_cmdline' as PatchName & TestModule,
  sequence: 1,
};
const NEWER: Member = {
  livePatch: 'cmdline-2' as LivePatchName,
  patchName: 'lpt_cmdline_v2' as PatchName & TestModule,
  sequence: 2,
};

/** The node's entries in the order they arrived: a node's list keeps it, and so does a reboot. */
function entries(lab: Lab, order: ArrivalOrder): DesiredPatch[] {
  const members = order === 'older-first' ? [OLDER, NEWER] : [NEWER, OLDER];
  return members.map((m) => ({
    livePatch: m.livePatch,
    patchName: m.patchName,
    state: 'Enabled',
    module: { hostPath: lab.module(m.patchName), sha256: '0'.repeat(64) },
    generation: 1,
    stallTimeout: '60s',
    allowForce: false,
    series: { name: 'cmdline', sequence: m.sequence },
  }));
}

const quiet = createLogger({ component: 'series-reboot', format: 'json', level: 'error' });
const MAX_ROUNDS = 60;

/**
 * The agent's loop without the API: read the kernel, decide, act, until
 * nothing is left to do. Modules are on the node already (every fetch ready);
 * the kernel checks each build itself.
 */
export async function settleNode(
  lab: Lab,
  desired: readonly DesiredPatch[],
  previous: readonly ObservedPatch[],
): Promise<ObservedPatch[]> {
  const fetches = new Map<string, FetchState>(
    desired.map((d) => [d.livePatch, { kind: 'ready', path: d.module.hostPath ?? '' }]),
  );
  let reported = [...previous];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const view = await readKernel(lab.backend, lab.profile, desired, quiet);
    const decision = decideNode(desired, view, reported, lab.now(), { fetches });
    reported = decision.patches;
    const a = decision.action;
    if (!a) {
      if (!view.patches.some((p) => p.transition)) return reported;
      await lab.sleep(500);
      continue;
    }
    if (a.kind === 'load') await lab.backend.load(a.path);
    else if (a.kind === 'setEnabled') await lab.backend.setEnabled(a.patchName, a.enabled);
    else if (a.kind === 'unload') await lab.backend.unload(a.patchName, 10_000);
    else
      throw new Error(
        `the agent asked for ${a.kind} on ${a.patchName}, which this scenario never needs`,
      );
  }
  throw new Error(`the agent did not settle within ${MAX_ROUNDS} rounds`);
}

/**
 * Settles the node, then again once the replaced patch's directory is freed
 * (the kernel removes it a moment after the replace), so the report is final.
 */
async function settleFully(
  lab: Lab,
  desired: readonly DesiredPatch[],
  previous: readonly ObservedPatch[],
): Promise<ObservedPatch[]> {
  const reported = await settleNode(lab, desired, previous);
  await eventually(lab, async () => (await lab.sysfsEntry(OLDER.patchName))?.enabled !== false);
  return settleNode(lab, desired, reported);
}

async function expectNewestOnly(
  lab: Lab,
  t: Trace,
  reported: readonly ObservedPatch[],
): Promise<void> {
  t.check('the newest build of the series runs', await lab.cmdlineOwner(), NEWER.patchName);
  t.check(
    'only the newest is enabled in the kernel',
    [
      entryText(await lab.sysfsEntry(OLDER.patchName)),
      entryText(await lab.sysfsEntry(NEWER.patchName)),
    ],
    ['absent', 'enabled=1 transition=0'],
  );
  const phase = (m: Member): string | undefined =>
    reported.find((p) => p.livePatch === m.livePatch)?.phase;
  t.check('the agent reports', [phase(OLDER), phase(NEWER)], ['Replaced', 'Patched']);
  t.check(
    'the older one names the newer as its replacer',
    reported.find((p) => p.livePatch === OLDER.livePatch)?.replacedBy,
    NEWER.livePatch,
  );
}

/** Before the reboot: the first build's entry, settled, then the second's beside it. */
async function arrival(lab: Lab, t: Trace, order: ArrivalOrder): Promise<ObservedPatch[]> {
  const all = entries(lab, order);
  const first = await settleNode(lab, all.slice(0, 1), []);
  t.check('the first build to arrive runs', await lab.cmdlineOwner(), all[0]?.patchName);
  const reported = await settleFully(lab, all, first);
  await expectNewestOnly(lab, t, reported);
  return reported;
}

/** After the reboot: the kernel has nothing, the entries and the agent's memory are as they were. */
async function rebooted(
  lab: Lab,
  t: Trace,
  order: ArrivalOrder,
  memory: readonly ObservedPatch[],
): Promise<ObservedPatch[]> {
  t.check('the rebooted kernel has no livepatch', (await lab.backend.patches()).length, 0);
  const reported = await settleFully(lab, entries(lab, order), memory);
  await expectNewestOnly(lab, t, reported);
  // Not even for a moment: an older build loaded first would run older code until the newer one replaced it.
  t.check(
    'the older build was never loaded again',
    await lab.backend.isLoaded(OLDER.patchName),
    false,
  );
  return reported;
}

export interface PhaseOutcome {
  readonly result: ScenarioResult;
  /** What the agent reported last: its memory across the reboot. */
  readonly reported: readonly ObservedPatch[];
}

export const scenarioName = (order: ArrivalOrder, phase: RebootPhase): string =>
  `series-reboot-${order}-${phase}`;

/** One phase of the scenario; `memory` is what the agent reported before the reboot. */
export async function runRebootPhase(
  lab: Lab,
  order: ArrivalOrder,
  phase: RebootPhase,
  memory: readonly ObservedPatch[] = [],
): Promise<PhaseOutcome> {
  const t = new Trace();
  const start = lab.now();
  let reported: readonly ObservedPatch[] = [];
  let error: string | undefined;
  try {
    reported =
      phase === 'arrival' ? await arrival(lab, t, order) : await rebooted(lab, t, order, memory);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  return {
    result: {
      scenario: scenarioName(order, phase),
      title:
        phase === 'arrival'
          ? `two members of a series arrive ${order}: only the newest ends enabled`
          : `after a reboot into the same kernel (builds arrived ${order}): only the newest ends enabled`,
      passed: error === undefined && t.ok,
      durationMs: lab.now() - start,
      steps: t.steps,
      ...(error ? { error } : {}),
    },
    reported,
  };
}
