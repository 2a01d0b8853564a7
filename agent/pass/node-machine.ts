// The agent's decisions, as a pure function: what the controller asks for
// (spec.patches), what the kernel has, what this agent last reported, where
// each module fetch stands, and the time → each patch's status and at most one
// action. One action at a time because the kernel runs one transition at a
// time; the loop applies it, reads the kernel again and asks again. A fetch
// is an action too, but only starts one: it runs beside the loop.
import type {
  BlockingTask,
  DesiredPatch,
  ObservedPatch,
  UnmanagedPatch,
} from '../../src/api/generated/types.js';
import { PATCH_NAME_PATTERN, type LivePatchName, type PatchName } from '../../src/api/names.js';
import { durationMs } from '../../src/api/quantities.js';
import { sequenceRival, supersedingMember } from '../../src/api/series.js';
import { describeTasks } from '../../src/api/tasks.js';
import { fetchMessage, FIRST_ATTEMPT, type FetchState } from '../module/fetch-retry.js';
import { forceMarks, type KernelProfile } from '../kernel/profile.js';
import type { KernelPatch, TransitionTasks } from '../kernel/types.js';

export interface KernelView {
  /** What this kernel release does differently (replace file, force marking). */
  readonly profile: KernelProfile;
  readonly patches: readonly KernelPatch[];
  /** Managed patch names whose module is loaded. */
  readonly loaded: ReadonlySet<PatchName>;
  /** Tasks of the managed patch in transition, when one runs. */
  readonly tasks?: TransitionTasks & { readonly name: PatchName };
}

interface Target {
  readonly livePatch: LivePatchName;
  readonly patchName: PatchName;
}

export type NodeAction =
  | (Target & { readonly kind: 'fetch'; readonly entry: DesiredPatch })
  | (Target & { readonly kind: 'load'; readonly path: string })
  | (Target & { readonly kind: 'setEnabled'; readonly enabled: boolean; readonly why: string })
  | (Target & { readonly kind: 'force' })
  | (Target & { readonly kind: 'unload' });

export interface NodeDecision {
  readonly patches: ObservedPatch[];
  readonly unmanaged: UnmanagedPatch[];
  readonly action?: NodeAction;
}

/** Safety first: reversing a stall beats unpatching, which beats loading something new. */
const PRIORITY: Record<string, number> = {
  force: 0,
  stall: 1,
  setEnabled: 2,
  unload: 3,
  load: 4,
  fetch: 4,
};

interface EntryResult {
  readonly status: ObservedPatch;
  readonly action?: NodeAction;
  readonly priority?: number;
}

interface Context {
  readonly entry: DesiredPatch;
  readonly kernel: KernelView;
  readonly prev: ObservedPatch | undefined;
  readonly now: number;
  /** Another patch (managed or not) is in transition. */
  readonly busyWith: string | undefined;
  /** Patch names the node's LivePatches manage, and by which; any other patch was loaded outside the operator. */
  readonly managed: ReadonlyMap<string, LivePatchName>;
  /** The newest newer member of this entry's series asked for on the node (src/api/series.ts). */
  readonly superseding: DesiredPatch | undefined;
  /** Another entry of this entry's series with the same sequence. */
  readonly rival: DesiredPatch | undefined;
  /** Where the fetch of this entry's module stands, if one started. */
  readonly fetch: FetchState | undefined;
  /** This boot's ID, as the Node reports it, when known. */
  readonly bootID: string | undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function base(c: Context, k: KernelPatch | undefined): ObservedPatch {
  return {
    livePatch: c.entry.livePatch,
    patchName: c.entry.patchName,
    phase: 'Pending',
    observedGeneration: c.entry.generation,
    ...(k ? { enabled: k.enabled, transition: k.transition } : {}),
    ...(c.prev?.forced ? { forced: true } : {}),
    // Pinned lasts as long as the module: a reboot (module gone) clears it.
    ...(c.prev?.pinned && c.kernel.loaded.has(c.entry.patchName) ? { pinned: true } : {}),
    // "When the current or last transition started": a settled patch keeps its last one.
    ...(c.prev?.transitionStartTime ? { transitionStartTime: c.prev.transitionStartTime } : {}),
  };
}

/** When the transition now running began: kept across reads (and agent restarts) while its direction holds. */
function transitionStart(c: Context, k: KernelPatch): number {
  const p = c.prev;
  if (p?.transition && p.enabled === k.enabled && p.transitionStartTime)
    return Date.parse(p.transitionStartTime);
  return c.now;
}

function live(
  c: Context,
  k: KernelPatch,
): { started: number; overdue: boolean; tasks: TransitionTasks } {
  const started = transitionStart(c, k);
  const tasks = c.kernel.tasks?.name === k.name ? c.kernel.tasks : { pending: 0, blocking: [] };
  return { started, overdue: c.now - started > durationMs(c.entry.stallTimeout), tasks };
}

const sameGeneration = (c: Context, ...phases: ObservedPatch['phase'][]): boolean =>
  c.prev?.observedGeneration === c.entry.generation && phases.includes(c.prev.phase);

const target = (c: Context): Target => ({
  livePatch: c.entry.livePatch,
  patchName: c.entry.patchName,
});

function stallMessage(c: Context, blocking: readonly BlockingTask[]): string {
  const who = blocking.length ? `blocked by ${describeTasks(blocking)}` : 'tasks did not switch';
  return `transition did not finish within ${c.entry.stallTimeout} (${who})`;
}

function inTransition(c: Context, k: KernelPatch): EntryResult {
  const { started, overdue, tasks } = live(c, k);
  const status: ObservedPatch = {
    ...base(c, k),
    transitionStartTime: iso(started),
    pendingTasks: tasks.pending,
    blockingTasks: [...tasks.blocking],
  };
  const wantEnabled = c.entry.state === 'Enabled';
  const stallReversal = sameGeneration(c, 'Stalled', 'Reversing') && k.enabled !== wantEnabled;
  if (stallReversal) return reversing(c, k, status, overdue);
  if (k.enabled !== wantEnabled) {
    // Heading the wrong way (the spec changed mid-transition): reverse it toward what is asked.
    const why = wantEnabled ? 'the patch is enabled again' : 'the patch is disabled';
    return {
      status: {
        ...status,
        phase: wantEnabled ? 'Transitioning' : 'Unpatching',
        message: `reversing: ${why}`,
      },
      action: { ...target(c), kind: 'setEnabled', enabled: wantEnabled, why },
      priority: PRIORITY['setEnabled'],
    };
  }
  if (overdue) {
    const message = `${stallMessage(c, tasks.blocking)}; reversing it on the node`;
    return {
      status: { ...status, phase: 'Stalled', message },
      action: { ...target(c), kind: 'setEnabled', enabled: !k.enabled, why: 'stalled' },
      priority: PRIORITY['stall'],
    };
  }
  const phase = wantEnabled ? 'Transitioning' : 'Unpatching';
  const progress = tasks.pending
    ? `${tasks.pending} tasks still on the ${wantEnabled ? 'old' : 'patched'} code (${describeTasks(tasks.blocking)})`
    : 'transition in progress';
  const message = wantEnabled && repatching(c) ? `${REBOOTED}: ${progress}` : progress;
  return { status: { ...status, phase, message } };
}

/** Whether forcing this patch's transition now pins its own module (kernel/profile.ts, forceMarks). */
function forcePinsSelf(c: Context, k: KernelPatch): boolean {
  const marks = forceMarks(c.kernel.profile, { enabling: k.enabled, replace: k.replace === true });
  return marks === 'self' || marks === 'all';
}

/** The node guard's reversal of a stalled transition, running. */
function reversing(
  c: Context,
  k: KernelPatch,
  status: ObservedPatch,
  overdue: boolean,
): EntryResult {
  const cause = c.prev?.blockingTasks ?? [];
  const stalled = { ...status, blockingTasks: [...cause] };
  if (!overdue) {
    const message = `${stallMessage(c, cause)}; reversing: ${status.pendingTasks ?? 0} tasks still to go back`;
    return { status: { ...stalled, phase: 'Reversing', message } };
  }
  if (c.entry.allowForce && !c.prev?.forced) {
    const pins = forcePinsSelf(c, k);
    return {
      status: {
        ...stalled,
        phase: 'Reversing',
        forced: true,
        ...(pins ? { pinned: true } : {}),
        message: `the reversal stalled too; forcing it (allowForce)${pins ? ': the module can never be unloaded afterwards' : ''}`,
      },
      action: { ...target(c), kind: 'force' },
      priority: PRIORITY['force'],
    };
  }
  const message =
    `the reversal stalled too: ${status.pendingTasks ?? 0} tasks (${describeTasks(status.blockingTasks ?? [])}) have not ` +
    'gone back; find what blocks them, or set spec.stall.allowForce (irreversible: the module can never be unloaded)';
  return { status: { ...stalled, phase: 'Reversing', message } };
}

function settled(c: Context, k: KernelPatch): EntryResult {
  const status = base(c, k);
  if (c.entry.state === 'Enabled') {
    if (k.enabled) {
      const message = repatching(c)
        ? `${REBOOTED}: re-patched; enabled, transition complete`
        : 'enabled; transition complete';
      return { status: { ...status, phase: 'Patched', message } };
    }
    return { status: { ...status, phase: 'Pending' } };
  }
  if (sameGeneration(c, 'Stalled', 'Reversing')) {
    // The disable stalled and the guard reversed it: do not try again for this generation.
    const cause = c.prev?.blockingTasks ?? [];
    const message = `${stallMessage(c, cause)}; the disable was reversed on the node, the patch is still enabled`;
    return { status: { ...status, phase: 'Stalled', blockingTasks: [...cause], message } };
  }
  if (c.busyWith) return waiting(c, status);
  return {
    status: { ...status, phase: 'Unpatching', message: 'disabling' },
    action: { ...target(c), kind: 'setEnabled', enabled: false, why: 'the patch is disabled' },
    priority: PRIORITY['setEnabled'],
  };
}

function waiting(c: Context, status: ObservedPatch): EntryResult {
  const other = c.busyWith ?? '';
  const outside = c.managed.has(other) ? '' : ' (loaded outside livepatch-operator)';
  return {
    status: {
      ...status,
      phase: 'Pending',
      message: `waiting for ${other}'s transition to finish${outside}: the kernel runs one transition at a time`,
    },
  };
}

/** The node guard reversed a stall of this generation: unload, then stay Stalled until a new generation. */
function afterStall(
  c: Context,
  status: ObservedPatch,
  unload: EntryResult,
  loaded: boolean,
): EntryResult {
  const cause = c.prev?.blockingTasks ?? [];
  // A pinned module can never leave the kernel: do not try, say so.
  const pinned = status.pinned === true;
  const outcome = pinned ? ` (${PINNED})` : loaded ? ', unloading' : ' and unloaded';
  const stalled: ObservedPatch = {
    ...status,
    phase: 'Stalled',
    blockingTasks: [...cause],
    message: `${stallMessage(c, cause)}; reversed on the node${outcome}`,
  };
  return loaded && !pinned ? { ...unload, status: stalled } : { status: stalled };
}

const PINNED =
  'its transition was forced, so the kernel holds the module forever: it cannot be unloaded until the node reboots';

/**
 * The patch that superseded this one, if any. Kernels from 6.11 say which
 * patches replace others (the `replace` file); on older ones a patch whose
 * directory vanished while its module stayed loaded, beside another enabled
 * patch, was replaced by it (or disabled by hand): never load it again on
 * top, older code would win.
 */
function replacer(c: Context, loaded: boolean): string | undefined {
  const others = c.kernel.patches.filter((p) => p.enabled && p.name !== c.entry.patchName);
  const known = others.find((p) => p.replace === true)?.name;
  if (known || !loaded) return known;
  return others.find((p) => p.replace === undefined)?.name;
}

/**
 * The patch was Patched and its directory is gone while a replacing patch is
 * enabled: the kernel replaced it. Without one (a reboot, say) nothing
 * replaced it, and it is loaded again.
 */
function replaced(c: Context, status: ObservedPatch, loaded: boolean): EntryResult | undefined {
  if (c.entry.state !== 'Enabled' || (c.prev?.phase !== 'Replaced' && c.prev?.phase !== 'Patched'))
    return undefined;
  const by = replacer(c, loaded);
  if (!by) return undefined;
  const owner = c.managed.get(by);
  return {
    status: {
      ...status,
      phase: 'Replaced',
      ...(owner ? { replacedBy: owner } : {}),
      message: `replaced by the atomic-replace patch ${by}`,
    },
  };
}

/**
 * A member of a series (spec.series) not in the kernel: the declared order
 * decides, not the kernel's last load. The kernel lets any replace patch
 * replace the enabled ones, older or not, so an older build loaded after a
 * newer one (a reboot loading entries in their order, or an older
 * LivePatch reaching the node later) would run older code. Never load it
 * while a newer member stands on the node; once the newer one is gone, load
 * it again only when the controller says so (entry.fallback), so falling
 * back is paced like a rollout.
 */
function seriesTurn(c: Context, status: ObservedPatch): EntryResult | undefined {
  const series = c.entry.series;
  if (c.entry.state !== 'Enabled' || !series) return undefined;
  const place = `series ${series.name}, sequence ${series.sequence}`;
  if (c.rival) {
    const message =
      `LivePatches ${c.entry.livePatch} and ${c.rival.livePatch} both declare ${place}: the agent cannot tell ` +
      'which build is newer and loads neither. Give one of them another spec.series.sequence';
    return { status: { ...status, phase: 'Failed', message } };
  }
  const newer = c.superseding;
  if (newer) {
    const message =
      `superseded by LivePatch ${newer.livePatch} (sequence ${newer.series?.sequence ?? '?'} of series ` +
      `${series.name}, this is sequence ${series.sequence}): an older build of a series is not loaded ` +
      'on a node where a newer one is enabled';
    return { status: { ...status, phase: 'Replaced', replacedBy: newer.livePatch, message } };
  }
  if (c.prev?.phase !== 'Replaced' || c.entry.fallback) return undefined;
  const message =
    `the newer member of series ${series.name} that replaced it is no longer enabled on this node; ` +
    'the controller loads this build again as a rollout, within spec.rollout.maxUnavailable';
  return {
    status: {
      ...status,
      phase: 'Replaced',
      ...(c.prev.replacedBy ? { replacedBy: c.prev.replacedBy } : {}),
      message,
    },
  };
}

/** Disabled on this node and no directory: unload, unless the kernel pins the module. */
function disabledAbsent(status: ObservedPatch, unload: EntryResult, loaded: boolean): EntryResult {
  if (!loaded)
    return { status: { ...status, phase: 'Unpatched', message: 'disabled and unloaded' } };
  if (status.pinned)
    return { status: { ...status, phase: 'Unpatched', message: `disabled; ${PINNED}` } };
  return { ...unload, status: { ...status, phase: 'Unpatching', message: 'unloading the module' } };
}

/** No sysfs directory: never loaded, disabled, reversed, or replaced. */
function absent(c: Context): EntryResult {
  const status = base(c, undefined);
  const loaded = c.kernel.loaded.has(c.entry.patchName);
  const unload: EntryResult = {
    status,
    action: { ...target(c), kind: 'unload' },
    priority: PRIORITY['unload'],
  };
  const inSeries = seriesTurn(c, status);
  if (inSeries) return inSeries;
  // A fall-back start: the controller saw the newer member go, whatever else the kernel has enabled.
  const replacedBy = c.entry.fallback ? undefined : replaced(c, status, loaded);
  if (replacedBy) return replacedBy;
  if (sameGeneration(c, 'Stalled', 'Reversing')) return afterStall(c, status, unload, loaded);
  if (sameGeneration(c, 'Failed'))
    return { status: { ...status, phase: 'Failed', message: c.prev?.message ?? '' } };
  if (c.entry.state === 'Disabled') return disabledAbsent(status, unload, loaded);
  if (c.busyWith) return waiting(c, status);
  if (loaded && status.pinned) {
    const message = `${c.entry.patchName} cannot be loaded again: ${PINNED}. Publish the build under a new patchName, or reboot the node`;
    return { status: { ...status, phase: 'Failed', message } };
  }
  if (loaded) {
    // A module without its patch directory cannot be enabled again: unload, then load afresh.
    return {
      ...unload,
      status: { ...status, phase: 'Pending', message: 'unloading a disabled copy before loading' },
    };
  }
  if (slotOfAnotherBoot(c))
    return {
      status: {
        ...status,
        phase: 'Pending',
        message: `${REBOOTED}: waiting for the controller to give it a rollout slot (maxUnavailable)`,
      },
    };
  return toLoad(c, status);
}

/** The entry's slot was given to an earlier boot of this node: the controller gives a rebooted node a new one in turn. */
const slotOfAnotherBoot = (c: Context): boolean =>
  c.entry.state === 'Enabled' &&
  c.entry.bootID !== undefined &&
  c.bootID !== undefined &&
  c.entry.bootID !== c.bootID;

/**
 * What a node that rebooted says while it loads its patch again, and once it
 * has: the kernel came back without a patch this agent had reported Patched.
 */
export const REBOOTED = 'the node rebooted without the patch';

/**
 * Loading again a patch this node had Patched, or still doing so: the kernel
 * lost it with no replacing patch (replaced() ruled that out), which is what a
 * reboot looks like. The word is kept from Loading through the transition.
 */
function repatching(c: Context): boolean {
  if (c.entry.state !== 'Enabled' || !c.prev) return false;
  if (c.prev.phase === 'Patched')
    return !c.kernel.loaded.has(c.entry.patchName) || !!c.prev.message?.startsWith(REBOOTED);
  return (
    (c.prev.phase === 'Loading' ||
      c.prev.phase === 'Transitioning' ||
      c.prev.phase === 'Pending') &&
    !!c.prev.message?.startsWith(REBOOTED)
  );
}

/**
 * Fetch, then load. While a fetch runs or waits to retry the node stays
 * Loading: in flight, not failed, until the fetch gives up (module/fetch-retry.ts).
 */
function toLoad(c: Context, status: ObservedPatch): EntryResult {
  const f = c.fetch;
  const lead = repatching(c) ? `${REBOOTED}: loading it again; ` : '';
  if (f?.kind === 'ready')
    return {
      status: { ...status, phase: 'Loading', message: `${lead}${fetchMessage(f)}` },
      action: { ...target(c), kind: 'load', path: f.path },
      priority: PRIORITY['load'],
    };
  if (f?.kind === 'failed') return { status: { ...status, phase: 'Failed', message: f.message } };
  const loading = {
    ...status,
    phase: 'Loading' as const,
    message: `${lead}${fetchMessage(f ?? FIRST_ATTEMPT)}`,
  };
  if (f?.kind === 'fetching' || (f?.kind === 'waiting' && f.retryAt > c.now))
    return { status: loading };
  return {
    status: loading,
    action: { ...target(c), kind: 'fetch', entry: c.entry },
    priority: PRIORITY['fetch'],
  };
}

/**
 * The CRD's pattern, checked again: the name becomes a sysfs directory and a
 * file name on the node, so an entry that got past a missing or older schema
 * must not reach either (a "../" in it would be a path).
 */
function invalidName(c: Context): EntryResult | undefined {
  if (PATCH_NAME_PATTERN.test(c.entry.patchName)) return undefined;
  const message =
    `spec.patches[].patchName ${JSON.stringify(c.entry.patchName.slice(0, 80))} is not a module name ` +
    `(${PATCH_NAME_PATTERN.source}); the agent will not act on it. Install the operator's CRDs, which refuse it`;
  return { status: { ...base(c, undefined), phase: 'Failed', message } };
}

function decideEntry(c: Context): EntryResult {
  const refused = invalidName(c);
  if (refused) return refused;
  const k = c.kernel.patches.find((p) => p.name === c.entry.patchName);
  if (!k) return absent(c);
  return k.transition ? inTransition(c, k) : settled(c, k);
}

/** What the agent keeps beside the kernel's and the API's view. */
export interface AgentView {
  /** LivePatches whose last action failed; they report, but propose no action until retried. */
  readonly resting?: ReadonlySet<string>;
  /** Each LivePatch's module fetch, for its current entry. */
  readonly fetches?: ReadonlyMap<string, FetchState>;
  /** The Node's boot ID when this agent started, if it could read it. */
  readonly bootID?: string;
}

export function decideNode(
  desired: readonly DesiredPatch[],
  kernel: KernelView,
  previous: readonly ObservedPatch[],
  now: number,
  agent: AgentView = {},
): NodeDecision {
  const resting = agent.resting ?? new Set<string>();
  const inFlight = kernel.patches.find((p) => p.transition)?.name;
  const managed = new Map<string, LivePatchName>(desired.map((d) => [d.patchName, d.livePatch]));
  const results = desired.map((entry) => {
    const prev = previous.find(
      (p) => p.livePatch === entry.livePatch && p.patchName === entry.patchName,
    );
    const busyWith = inFlight !== undefined && inFlight !== entry.patchName ? inFlight : undefined;
    const fetch = agent.fetches?.get(entry.livePatch);
    const superseding = supersedingMember(desired, previous, entry);
    const rival = sequenceRival(desired, entry);
    return decideEntry({
      entry,
      kernel,
      prev,
      now,
      busyWith,
      managed,
      fetch,
      superseding,
      rival,
      bootID: agent.bootID,
    });
  });
  const chosen = results
    .filter((r) => r.action && !resting.has(r.action.livePatch))
    .sort((a, b) => (a.priority ?? 9) - (b.priority ?? 9))[0];
  const unmanaged = kernel.patches
    .filter((p) => !managed.has(p.name))
    .map((p) => ({ patchName: p.name, enabled: p.enabled, transition: p.transition }));
  const patches = results.map((r) =>
    r === chosen || !r.action || (r.action.kind !== 'load' && r.action.kind !== 'fetch')
      ? r.status
      : {
          ...r.status,
          phase: 'Pending' as const,
          message: 'waiting for this node’s other patch work',
        },
  );
  const pinnedByForce = chosen?.action?.kind === 'force' ? pinnedOthers(kernel, chosen.action) : [];
  return {
    patches: patches.map((p) => (pinnedByForce.includes(p.patchName) ? { ...p, pinned: true } : p)),
    unmanaged,
    ...(chosen?.action ? { action: chosen.action } : {}),
  };
}

/**
 * The other patches a force pins with it: every one before 5.18, the ones a
 * replace patch supersedes after (kernel/profile.ts, forceMarks). The kernel
 * marks the patches on its list, which are those with a sysfs directory; a
 * managed module still loaded without one (disabled, replaced) is not marked
 * and stays removable.
 */
function pinnedOthers(kernel: KernelView, action: NodeAction): PatchName[] {
  const k = kernel.patches.find((p) => p.name === action.patchName);
  if (!k) return [];
  const marks = forceMarks(kernel.profile, { enabling: k.enabled, replace: k.replace === true });
  if (marks !== 'all' && marks !== 'others') return [];
  return [...kernel.loaded].filter(
    (name) => name !== action.patchName && kernel.patches.some((p) => p.name === name),
  );
}
