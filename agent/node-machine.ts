// The agent's decisions, as a pure function: what the controller asks for
// (spec.patches), what the kernel has, what this agent last reported, and the
// time → each patch's status and at most one kernel action. One action at a
// time because the kernel runs one transition at a time; the loop applies it,
// reads the kernel again and asks again.
import type {
  BlockingTask,
  DesiredPatch,
  ObservedPatch,
  UnmanagedPatch,
} from '../src/api/generated/types.js';
import type { LivePatchName, PatchName } from '../src/api/names.js';
import { durationMs } from '../src/api/quantities.js';
import { describeTasks } from '../src/api/tasks.js';
import type { KernelPatch, TransitionTasks } from './kernel/types.js';

export interface KernelView {
  readonly patches: readonly KernelPatch[];
  /** Managed patch names whose module is loaded. */
  readonly loaded: ReadonlySet<PatchName>;
  /** Tasks of the patch in transition, when one runs. */
  readonly tasks?: TransitionTasks & { readonly name: PatchName };
}

interface Target {
  readonly livePatch: LivePatchName;
  readonly patchName: PatchName;
}

export type NodeAction =
  | (Target & { readonly kind: 'load'; readonly entry: DesiredPatch })
  | (Target & { readonly kind: 'setEnabled'; readonly enabled: boolean; readonly why: string })
  | (Target & { readonly kind: 'force' })
  | (Target & { readonly kind: 'unload' });

export interface NodeDecision {
  readonly patches: ObservedPatch[];
  readonly unmanaged: UnmanagedPatch[];
  readonly action?: NodeAction;
}

/** Safety first: reversing a stall beats unpatching, which beats loading something new. */
const PRIORITY: Record<string, number> = { force: 0, stall: 1, setEnabled: 2, unload: 3, load: 4 };

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
  readonly busyWith: PatchName | undefined;
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
  if (stallReversal) return reversing(c, status, overdue);
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
  const message = tasks.pending
    ? `${tasks.pending} tasks still on the ${wantEnabled ? 'old' : 'patched'} code (${describeTasks(tasks.blocking)})`
    : 'transition in progress';
  return { status: { ...status, phase, message } };
}

/** The node guard's reversal of a stalled transition, running. */
function reversing(c: Context, status: ObservedPatch, overdue: boolean): EntryResult {
  const cause = c.prev?.blockingTasks ?? [];
  const stalled = { ...status, blockingTasks: [...cause] };
  if (!overdue) {
    const message = `${stallMessage(c, cause)}; reversing: ${status.pendingTasks ?? 0} tasks still to go back`;
    return { status: { ...stalled, phase: 'Reversing', message } };
  }
  if (c.entry.allowForce && !c.prev?.forced) {
    return {
      status: {
        ...stalled,
        phase: 'Reversing',
        forced: true,
        message: 'the reversal stalled too; forcing it (allowForce)',
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
    if (k.enabled)
      return { status: { ...status, phase: 'Patched', message: 'enabled; transition complete' } };
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
  return {
    status: {
      ...status,
      phase: 'Pending',
      message: `waiting for ${c.busyWith ?? ''}'s transition to finish`,
    },
  };
}

/** No sysfs directory: never loaded, disabled, reversed, or replaced. */
/** The node guard reversed a stall of this generation: unload, then stay Stalled until a new generation. */
function afterStall(
  c: Context,
  status: ObservedPatch,
  unload: EntryResult,
  loaded: boolean,
): EntryResult {
  const cause = c.prev?.blockingTasks ?? [];
  // A forced module can never leave the kernel: do not try, say so.
  const forced = c.prev?.forced === true;
  const outcome = forced
    ? ' (forced: the module can never be unloaded)'
    : loaded
      ? ', unloading'
      : ' and unloaded';
  const stalled: ObservedPatch = {
    ...status,
    phase: 'Stalled',
    blockingTasks: [...cause],
    message: `${stallMessage(c, cause)}; reversed on the node${outcome}`,
  };
  return loaded && !forced ? { ...unload, status: stalled } : { status: stalled };
}

/**
 * The patch was Patched and its directory is gone while an atomic-replace
 * patch is enabled: the kernel replaced it. Without such a patch (a reboot,
 * say) nothing replaced it, and it is loaded again.
 */
function replaced(c: Context, status: ObservedPatch): EntryResult | undefined {
  if (c.entry.state !== 'Enabled' || (c.prev?.phase !== 'Replaced' && c.prev?.phase !== 'Patched'))
    return undefined;
  const by = c.kernel.patches.find(
    (p) => p.replace && p.enabled && p.name !== c.entry.patchName,
  )?.name;
  if (!by) return undefined;
  return {
    status: { ...status, phase: 'Replaced', message: `replaced by the atomic-replace patch ${by}` },
  };
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
  const replacedBy = replaced(c, status);
  if (replacedBy) return replacedBy;
  if (sameGeneration(c, 'Stalled', 'Reversing')) return afterStall(c, status, unload, loaded);
  if (sameGeneration(c, 'Failed'))
    return { status: { ...status, phase: 'Failed', message: c.prev?.message ?? '' } };
  if (c.entry.state === 'Disabled') {
    return loaded
      ? { ...unload, status: { ...status, phase: 'Unpatching', message: 'unloading the module' } }
      : { status: { ...status, phase: 'Unpatched', message: 'disabled and unloaded' } };
  }
  if (c.busyWith) return waiting(c, status);
  if (loaded) {
    // A module without its patch directory cannot be enabled again: unload, then load afresh.
    return {
      ...unload,
      status: { ...status, phase: 'Pending', message: 'unloading a disabled copy before loading' },
    };
  }
  return {
    status: { ...status, phase: 'Loading', message: 'loading the module' },
    action: { ...target(c), kind: 'load', entry: c.entry },
    priority: PRIORITY['load'],
  };
}

function decideEntry(c: Context): EntryResult {
  const k = c.kernel.patches.find((p) => p.name === c.entry.patchName);
  if (!k) return absent(c);
  return k.transition ? inTransition(c, k) : settled(c, k);
}

/** `resting`: LivePatches whose last action failed; they report, but propose no action until retried. */
export function decideNode(
  desired: readonly DesiredPatch[],
  kernel: KernelView,
  previous: readonly ObservedPatch[],
  now: number,
  resting: ReadonlySet<string> = new Set(),
): NodeDecision {
  const inFlight = kernel.patches.find((p) => p.transition)?.name;
  const results = desired.map((entry) => {
    const prev = previous.find(
      (p) => p.livePatch === entry.livePatch && p.patchName === entry.patchName,
    );
    const busyWith = inFlight !== undefined && inFlight !== entry.patchName ? inFlight : undefined;
    return decideEntry({ entry, kernel, prev, now, busyWith });
  });
  const chosen = results
    .filter((r) => r.action && !resting.has(r.action.livePatch))
    .sort((a, b) => (a.priority ?? 9) - (b.priority ?? 9))[0];
  const managed = new Set(desired.map((d) => d.patchName));
  const unmanaged = kernel.patches
    .filter((p) => !managed.has(p.name))
    .map((p) => ({ patchName: p.name, enabled: p.enabled, transition: p.transition }));
  const patches = results.map((r) =>
    r === chosen || !r.action || r.action.kind !== 'load'
      ? r.status
      : {
          ...r.status,
          phase: 'Pending' as const,
          message: 'waiting for this node’s other patch work',
        },
  );
  return { patches, unmanaged, ...(chosen?.action ? { action: chosen.action } : {}) };
}
