// The rollout policy as a pure function: a LivePatch, where every node stands
// on it, and the time → which nodes get which desired entry, the phase, the
// step, and when to look again. Progress lives in LivePatch.status, so a
// restarted controller continues exactly where the last one stopped.
//
// Rules (README "How a rollout proceeds" says the same for users):
// - Rolling, like the DaemonSet controller: maxUnavailable is the number of
//   nodes in flight at any moment (loading, in transition, or baking). A node
//   frees its slot when it has settled and then stayed Patched and healthy
//   for bakeTime (bake.ts); the next node in rolloutOrder (stable hash)
//   starts at once. A node that went silent (NotReady, agent gone)
//   mid-transition keeps its slot: the patch may be what took it down.
// - The health gate: a baking node whose Node turns NotReady, whose agent
//   stops reporting, or whose kernel gains a damage taint fails; it counts
//   against failureBudget like a stalled one.
// - Steps grow the patched set to a count or percentage; a pause step holds
//   for its duration, or until spec.rollout.paused changes. After the last step
//   the rollout continues to every targeted node.
// - Stalled + failed nodes above failureBudget fire stall.action: Rollback
//   unpatches every node of the patch (RolledBack), Halt starts no new node
//   (Failed), Ignore goes on.
// - Disabled and deletion unpatch every node that has the patch, at most
//   maxUnavailable at a time; deletion then removes the entries.
// - An abort (annotation livepatch.io/abort naming the current attempt,
//   spec.rollout.attempt) rolls back like stall.action Rollback, with reason
//   Aborted. It is read from the object on every pass, so a controller that
//   takes over mid-abort goes on with it; pauses and edits keep it, only a
//   retry (a new attempt) leaves it behind.
// - A new generation: nodes already patched stay patched (their entry takes
//   the new generation, no kernel work); Stalled and Failed nodes of the old
//   generation are tried again; the steps start over, counting patched nodes.
//   While rolling forward, pauses already passed stay passed and the one held
//   keeps its start (toggling spec.rollout.paused is itself a new generation).
import type {
  DesiredPatch,
  LivePatch,
  LivePatchPhase,
  PatchState,
  PauseStep,
  UnhealthyNode,
} from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import { clip, listSome } from '../api/listing.js';
import { durationMs, scaleIntOrPercent } from '../api/quantities.js';
import { abortAnnotation, byWhom, requestedBy } from '../api/steering.js';
import { rolloutOrder, type NodeSlot, type Progress, type TargetSlot } from './targets.js';

export interface StepState {
  readonly index: number;
  readonly startTime: number;
  readonly pausedAtStart: boolean;
}

export interface Plan {
  readonly phase: LivePatchPhase;
  /** Why the rollout is where it is, for the Progressing condition. */
  readonly reason: string;
  readonly message: string;
  /** New desired entries for this LivePatch, per node; null removes the entry. */
  readonly writes: ReadonlyMap<NodeName, DesiredPatch | null>;
  /** Nodes this pass starts (into free slots, or a batch of unpatching). */
  readonly started: readonly NodeName[];
  readonly step: StepState;
  /** Every node that failed the health gate this generation, kept in status. */
  readonly unhealthy: readonly UnhealthyNode[];
  /** spec.rollout.maxUnavailable resolved against the targeted nodes. */
  readonly maxUnavailable: number;
  readonly requeueAfterMs?: number;
  /** Deletion may proceed: every node has unpatched or its agent is gone. */
  readonly releaseFinalizer: boolean;
  /** This pass starts a new generation after RolledBack or Failed: a fresh attempt, announced by an Event. */
  readonly retry?: Retry;
}

export interface Retry {
  readonly after: 'RolledBack' | 'Failed';
  readonly attempt?: number;
  readonly by?: string;
}

interface Ctx {
  readonly lp: LivePatch;
  readonly slots: readonly NodeSlot[];
  readonly targets: readonly TargetSlot[];
  readonly now: number;
  readonly generation: number;
  readonly sameGeneration: boolean;
  readonly maxUnavailable: number;
  readonly unhealthy: readonly UnhealthyNode[];
}

const SETTLED: ReadonlySet<Progress> = new Set(['patched', 'stalled', 'failed', 'replaced']);
/** Nodes named in one message; the rest are counted (a message must stay short at any fleet size). */
const LISTED_NODES = 5;
const BUSY_RETRY_MS = 5000;

export function desiredEntry(ctx: Ctx, slot: TargetSlot, state: PatchState): DesiredPatch {
  return specEntry(ctx, slot.kernel.module, state);
}

/** An entry as this generation of the spec has it; a Disabled one keeps the module it had (it never loads). */
function specEntry(ctx: Ctx, module: DesiredPatch['module'], state: PatchState): DesiredPatch {
  const lp = ctx.lp;
  return {
    livePatch: lp.metadata.name as DesiredPatch['livePatch'],
    patchName: lp.spec.patchName,
    state,
    module,
    generation: ctx.generation,
    stallTimeout: lp.spec.stall.timeout,
    allowForce: lp.spec.stall.allowForce,
    bakeTime: lp.spec.rollout.bakeTime,
  };
}

const count = (targets: readonly TargetSlot[], ...progress: Progress[]): number =>
  targets.filter((t) => progress.includes(t.progress)).length;

/** Field by field: this runs for every started node on every pass, canonical JSON was most of a pass. */
function sameEntry(a: DesiredPatch, b: DesiredPatch): boolean {
  return (
    a.livePatch === b.livePatch &&
    a.patchName === b.patchName &&
    a.state === b.state &&
    a.generation === b.generation &&
    a.stallTimeout === b.stallTimeout &&
    a.allowForce === b.allowForce &&
    a.bakeTime === b.bakeTime &&
    sameModule(a.module, b.module)
  );
}

function sameModule(a: DesiredPatch['module'], b: DesiredPatch['module']): boolean {
  const c = a.configMap;
  const d = b.configMap;
  return (
    a.sha256 === b.sha256 &&
    a.url === b.url &&
    a.hostPath === b.hostPath &&
    c?.namespace === d?.namespace &&
    c?.name === d?.name &&
    c?.key === d?.key
  );
}

/**
 * Entries of nodes already on their way keep up with the spec (new
 * generation, stall timeout, force policy, module build), and an entry edited
 * by hand is written back: the controller owns spec. A stalled or failed
 * node's entry is restored within its generation only: a new generation
 * retries it when a slot frees, not here. A patched node's entry takes the
 * spec's module too, not the build its kernel runs: the node does not report
 * which build it loaded, and without that a kept module cannot be told from
 * one edited by hand (which would load at the next reboot).
 */
function refreshes(ctx: Ctx, writes: Map<NodeName, DesiredPatch | null>): void {
  for (const slot of ctx.targets) {
    if (!slot.desired || slot.desired.state !== 'Enabled') continue;
    const current = slot.desired.generation === ctx.generation;
    if (!REFRESHED.has(slot.progress) && !(current && SETTLED.has(slot.progress))) continue;
    const fresh = desiredEntry(ctx, slot, 'Enabled');
    if (!sameEntry(fresh, slot.desired)) writes.set(slot.node.name, fresh);
  }
}

const REFRESHED: ReadonlySet<Progress> = new Set(['inFlight', 'patched', 'replaced']);

function base(
  ctx: Ctx,
  step: StepState,
): {
  writes: Map<NodeName, DesiredPatch | null>;
  started: NodeName[];
  step: StepState;
  unhealthy: readonly UnhealthyNode[];
  maxUnavailable: number;
  releaseFinalizer: boolean;
} {
  return {
    writes: new Map(),
    started: [],
    step,
    unhealthy: ctx.unhealthy,
    maxUnavailable: ctx.maxUnavailable,
    releaseFinalizer: false,
  };
}

const ROLLING_FORWARD = new Set<LivePatchPhase | undefined>([
  'Progressing',
  'Paused',
  'Complete',
  'Failed',
]);

/**
 * Where the last generation's rollout stood, if it was rolling forward. Any
 * spec edit is a new generation, toggling spec.rollout.paused included: the
 * steps start over, but the pauses already passed stay passed and the one
 * being held keeps its start, or every edit would re-hold them and an empty
 * pause could never be released.
 */
function previousStep(ctx: Ctx): StepState | undefined {
  const s = ctx.lp.status;
  if (ctx.sameGeneration || !ROLLING_FORWARD.has(s?.phase)) return undefined;
  if (s?.currentStep === undefined || !s.currentStepStartTime) return undefined;
  return {
    index: s.currentStep,
    startTime: Date.parse(s.currentStepStartTime),
    pausedAtStart: s.pausedAtStepStart ?? ctx.lp.spec.rollout.paused,
  };
}

function enterStep(ctx: Ctx, index: number): StepState {
  const previous = previousStep(ctx);
  if (previous?.index === index) return previous;
  return { index, startTime: ctx.now, pausedAtStart: ctx.lp.spec.rollout.paused };
}

function initialStep(ctx: Ctx): StepState {
  const s = ctx.lp.status;
  const paused = ctx.lp.spec.rollout.paused;
  if (!ctx.sameGeneration || !s) return enterStep(ctx, 0);
  return {
    index: s.currentStep ?? 0,
    startTime: s.currentStepStartTime ? Date.parse(s.currentStepStartTime) : ctx.now,
    pausedAtStart: s.pausedAtStepStart ?? paused,
  };
}

type StepOutcome =
  | { readonly kind: 'grow'; readonly goal: number; readonly step: StepState }
  | {
      readonly kind: 'hold';
      readonly step: StepState;
      readonly message: string;
      readonly requeueAfterMs?: number;
    };

/** A pause step holds, or undefined once it is over. */
function pauseHold(ctx: Ctx, step: StepState, pause: PauseStep): StepOutcome | undefined {
  if (pause.duration !== undefined) {
    const remaining = step.startTime + durationMs(pause.duration) - ctx.now;
    if (remaining <= 0) return undefined;
    return {
      kind: 'hold',
      step,
      message: `paused at step ${step.index + 1} for ${pause.duration}`,
      requeueAfterMs: remaining,
    };
  }
  if (ctx.lp.spec.rollout.paused !== step.pausedAtStart) return undefined;
  return {
    kind: 'hold',
    step,
    message: `paused at step ${step.index + 1} until spec.rollout.paused is changed`,
  };
}

/** Walks the steps from the current one, advancing past every step already satisfied. */
export function resolveStep(
  ctx: Ctx,
  start: StepState,
  settled: number,
  inFlight: number,
): StepOutcome {
  const steps = ctx.lp.spec.rollout.steps ?? [];
  const total = ctx.targets.length;
  const passed = previousStep(ctx)?.index ?? 0;
  let step = start;
  for (; step.index < steps.length; step = enterStep(ctx, step.index + 1)) {
    const s = steps[step.index] ?? {};
    if (s.pause) {
      const hold = step.index < passed ? undefined : pauseHold(ctx, step, s.pause);
      if (hold) return hold;
      continue;
    }
    const goal = Math.min(total, s.nodes ?? Math.ceil(((s.percent ?? 100) * total) / 100));
    if (settled < goal || inFlight > 0) return { kind: 'grow', goal, step };
  }
  return { kind: 'grow', goal: total, step };
}

/** Stalled and failed targets, and nodes that went away while baking. */
const failures = (ctx: Ctx): number =>
  count(ctx.targets, 'stalled', 'failed') +
  ctx.slots.filter((s) => s.kind === 'unknown' && s.unhealthy).length;

function stallPolicy(ctx: Ctx, step: StepState): Plan | undefined {
  const failed = failures(ctx);
  const budget = ctx.lp.spec.failureBudget;
  if (failed <= budget) return undefined;
  const what = `${failed} node(s) stalled or failed, over the failure budget of ${budget}`;
  switch (ctx.lp.spec.stall.action) {
    case 'Rollback':
      return unpatch(ctx, { kind: 'rollback' });
    case 'Halt': {
      const b = base(ctx, step);
      refreshes(ctx, b.writes);
      return {
        ...b,
        phase: 'Failed',
        reason: 'Halted',
        message: `${what}; stall.action Halt: no new node starts. Find what blocks the stalled nodes, then kubectl livepatch retry ${ctx.lp.metadata.name ?? ''} (or edit the LivePatch)`,
      };
    }
    case 'Ignore':
      return undefined;
  }
}

/** Starts the next nodes in rollout order into the free slots, up to the step's goal. */
function startNodes(ctx: Ctx, step: StepState, room: number, occupied: string): Plan {
  const b = base(ctx, step);
  refreshes(ctx, b.writes);
  const candidates = ctx.targets.filter(
    (t) => (t.progress === 'none' || t.progress === 'unpatched') && !t.busyElsewhere,
  );
  const byName = new Map(candidates.map((c) => [c.node.name, c]));
  const next = rolloutOrder(ctx.lp.metadata.name ?? '', [...byName.keys()]).slice(0, room);
  for (const name of next) {
    const slot = byName.get(name);
    if (slot) b.writes.set(name, desiredEntry(ctx, slot, 'Enabled'));
  }
  if (next.length > 0)
    return {
      ...b,
      started: next,
      phase: 'Progressing',
      reason: 'NodesStarted',
      message: `started ${next.length} node(s); ${occupied}`,
    };
  return {
    ...b,
    phase: 'Progressing',
    reason: 'WaitingForNodes',
    message: `the next nodes are busy with another patch; ${occupied}`,
    requeueAfterMs: BUSY_RETRY_MS,
  };
}

/**
 * Nodes that went silent (NotReady, agent gone) mid-transition. They have not
 * settled and keep their slot: the patch may be what took them down.
 */
function silentInFlight(ctx: Ctx): NodeName[] {
  return ctx.slots
    .filter((s) => s.kind === 'unknown' && s.progress === 'inFlight')
    .map((s) => s.node.name);
}

function inFlightMessage(inFlight: number, baking: number, silent: readonly NodeName[]): string {
  const text = `${inFlight} node(s) in transition, ${baking} baking`;
  if (!silent.length) return text;
  const who = listSome(silent, LISTED_NODES);
  return `${text}; ${who} went silent mid-transition and ${silent.length > 1 ? 'keep their slots' : 'keeps its slot'}: if the patch took ${silent.length > 1 ? 'them' : 'it'} down, disable the LivePatch`;
}

function enable(ctx: Ctx): Plan {
  const settled = ctx.targets.filter((t) => SETTLED.has(t.progress)).length;
  const silent = silentInFlight(ctx);
  const inFlight = count(ctx.targets, 'inFlight') + silent.length;
  const baking = ctx.targets.filter((t) => t.bake?.kind === 'baking').length;
  const occupied = inFlight + baking;
  const outcome = resolveStep(ctx, initialStep(ctx), settled, occupied);
  const policy = stallPolicy(ctx, outcome.step);
  if (policy) return policy;
  const b = base(ctx, outcome.step);
  refreshes(ctx, b.writes);
  if (ctx.lp.spec.rollout.paused) {
    return {
      ...b,
      phase: 'Paused',
      reason: 'Paused',
      message: 'spec.rollout.paused is true: no new node starts',
    };
  }
  if (outcome.kind === 'hold') {
    return {
      ...b,
      phase: 'Paused',
      reason: 'PauseStep',
      message: outcome.message,
      ...(outcome.requeueAfterMs ? { requeueAfterMs: outcome.requeueAfterMs } : {}),
    };
  }
  if (settled >= ctx.targets.length && occupied === 0) {
    return {
      ...b,
      phase: 'Complete',
      reason: 'Complete',
      message: 'every targeted node has settled',
    };
  }
  const message = inFlightMessage(inFlight, baking, silent);
  // Settled counts baking nodes too: they are started, and the step's goal counts them.
  const room = Math.min(ctx.maxUnavailable - occupied, outcome.goal - settled - inFlight);
  if (room > 0) return startNodes(ctx, outcome.step, room, message);
  return { ...b, phase: 'Progressing', reason: 'NodesInFlight', message };
}

type UnpatchMode =
  | { readonly kind: 'rollback' | 'disable' | 'delete' }
  | { readonly kind: 'abort'; readonly by?: string };

interface Holder {
  readonly name: NodeName;
  readonly desired: DesiredPatch;
  readonly progress: Progress;
  readonly reachable: boolean;
  /** Its disable stalled or failed and the kernel still has the patch enabled. */
  readonly stillEnabled?: string;
  /**
   * Its guard is reversing a stalled enable: it is unpatching by itself, and a
   * Disabled entry now would cut short the Stalled report (and the tasks that
   * blocked it), so it gets its entry once the reversal is done.
   */
  readonly guardReversing: boolean;
}

function holders(ctx: Ctx): Holder[] {
  const out: Holder[] = [];
  for (const s of ctx.slots) {
    if (s.kind === 'unknown' && s.desired) {
      out.push({
        name: s.node.name,
        desired: s.desired,
        progress: 'none',
        reachable: false,
        guardReversing: false,
      });
    }
    if ((s.kind !== 'target' && s.kind !== 'leftover') || !s.desired) continue;
    const observed = s.observed;
    const stuck =
      s.desired.state === 'Disabled' &&
      (s.progress === 'stalled' || s.progress === 'failed') &&
      observed?.enabled === true;
    out.push({
      name: s.node.name,
      desired: s.desired,
      progress: s.progress,
      reachable: true,
      guardReversing: s.desired.state === 'Enabled' && observed?.phase === 'Reversing',
      ...(stuck ? { stillEnabled: observed.message ?? s.progress } : {}),
    });
  }
  return out;
}

const PHASES: Record<UnpatchMode['kind'], { busy: LivePatchPhase; done: LivePatchPhase }> = {
  rollback: { busy: 'RollingBack', done: 'RolledBack' },
  abort: { busy: 'RollingBack', done: 'RolledBack' },
  disable: { busy: 'Disabling', done: 'Disabled' },
  delete: { busy: 'Disabling', done: 'Disabled' },
};

/** The reason and the opening of the message: an abort says so, and who asked. */
function unpatchWords(mode: UnpatchMode, phase: LivePatchPhase): [string, string] {
  if (mode.kind === 'abort') return ['Aborted', `aborted${byWhom(mode.by)}: `];
  return [phase, ''];
}

/** Entries to switch to Disabled: enabled ones, and disables that failed under an older generation (an edit retries them). */
const needsDisable = (ctx: Ctx, h: Holder): boolean =>
  h.desired.state === 'Enabled' ||
  (h.progress === 'none' && h.desired.generation !== ctx.generation);

function unpatchFailed(
  ctx: Ctx,
  b: ReturnType<typeof base>,
  mode: UnpatchMode,
  stuck: readonly Holder[],
): Plan {
  const nodes = listSome(
    stuck.map((h) => `${h.name} (${clip(h.stillEnabled ?? '', 200)})`),
    LISTED_NODES,
    '; ',
  );
  const escape =
    mode.kind === 'delete'
      ? ` Deletion waits for them; to leave the patch on those nodes, remove the finalizer: kubectl patch lp ${ctx.lp.metadata.name ?? ''} --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'`
      : '';
  return {
    ...b,
    phase: 'Failed',
    reason: 'UnpatchFailed',
    message: `could not unpatch ${stuck.length} node(s), the patch is still enabled there: ${nodes}. Fix the node, then kubectl livepatch retry ${ctx.lp.metadata.name ?? ''} (or edit the LivePatch).${escape}`,
  };
}

/** A Disabled entry of this generation edited by hand is written back (allowForce, above all). */
function restoreDisabled(
  ctx: Ctx,
  holders: readonly Holder[],
  writes: Map<NodeName, DesiredPatch | null>,
): void {
  for (const h of holders) {
    if (h.desired.state !== 'Disabled' || h.desired.generation !== ctx.generation) continue;
    const fresh = specEntry(ctx, h.desired.module, 'Disabled');
    if (!writes.has(h.name) && !sameEntry(fresh, h.desired)) writes.set(h.name, fresh);
  }
}

/** Rollback, Disabled and deletion: every node holding the patch unpatches, maxUnavailable at a time. */
function unpatch(ctx: Ctx, mode: UnpatchMode): Plan {
  const b = base(ctx, initialStep(ctx));
  const all = holders(ctx);
  const reachable = all.filter((h) => h.reachable);
  const disabling = reachable.filter(
    (h) => (h.desired.state === 'Disabled' && h.progress === 'inFlight') || h.guardReversing,
  ).length;
  // In-flight enables first: reversing them is what a rollback is for.
  const toDisable = reachable
    .filter((h) => needsDisable(ctx, h) && !h.guardReversing)
    .sort((a, c) => Number(c.progress === 'inFlight') - Number(a.progress === 'inFlight'));
  const batch = toDisable.slice(0, Math.max(0, ctx.maxUnavailable - disabling));
  // Nodes whose agent is away get their Disabled entry now; they act on it when they return.
  const away = all.filter((h) => !h.reachable && h.desired.state === 'Enabled');
  for (const h of [...batch, ...away])
    b.writes.set(h.name, specEntry(ctx, h.desired.module, 'Disabled'));
  restoreDisabled(ctx, reachable, b.writes);
  const phases = PHASES[mode.kind];
  if (toDisable.length > 0 || disabling > 0) {
    const [reason, lead] = unpatchWords(mode, phases.busy);
    return {
      ...b,
      started: batch.map((h) => h.name),
      phase: phases.busy,
      reason,
      message: `${lead}unpatching: ${toDisable.length + disabling} node(s) to go`,
    };
  }
  const stuck = reachable.filter((h) => h.stillEnabled !== undefined);
  if (stuck.length) return unpatchFailed(ctx, b, mode, stuck);
  if (mode.kind === 'delete') {
    for (const h of all) b.writes.set(h.name, null);
    return {
      ...b,
      phase: phases.done,
      reason: 'Deleted',
      message: 'every node has unpatched; removing the finalizer',
      releaseFinalizer: true,
    };
  }
  const [reason, lead] = unpatchWords(mode, phases.done);
  return { ...b, phase: phases.done, reason, message: `${lead}every node has unpatched` };
}

const MAX_UNHEALTHY_LISTED = 256;

/** The health-gate failures of this generation: those already in status, then the ones found now. */
function unhealthyNodes(lp: LivePatch, slots: readonly NodeSlot[]): UnhealthyNode[] {
  const generation = lp.metadata.generation ?? 1;
  const kept = (lp.status?.unhealthyNodes ?? []).filter((u) => u.generation === generation);
  const known = new Set(kept.map((u) => u.node));
  const found = slots.flatMap((s) => {
    const record =
      s.kind === 'unknown'
        ? s.unhealthy
        : s.kind === 'target' && s.bake?.kind === 'unhealthy'
          ? s.bake.record
          : undefined;
    return record && !known.has(record.node) ? [record] : [];
  });
  return [...kept, ...found].slice(0, MAX_UNHEALTHY_LISTED);
}

/**
 * `patchNameOwner`: an older LivePatch with the same patchName. Nodes know a
 * patch by that name only, so this one must not touch them: it waits, Failed,
 * until the other is gone or this one is deleted.
 */
export function planRollout(
  lp: LivePatch,
  slots: readonly NodeSlot[],
  now: number,
  patchNameOwner?: string,
): Plan {
  const generation = lp.metadata.generation ?? 1;
  const targets = slots.filter((s): s is TargetSlot => s.kind === 'target');
  const ctx: Ctx = {
    lp,
    slots,
    targets,
    now,
    generation,
    sameGeneration: lp.status?.observedGeneration === generation,
    maxUnavailable: scaleIntOrPercent(lp.spec.rollout.maxUnavailable, targets.length),
    unhealthy: unhealthyNodes(lp, slots),
  };
  if (lp.metadata.deletionTimestamp) return unpatch(ctx, { kind: 'delete' });
  if (patchNameOwner) {
    return {
      ...base(ctx, initialStep(ctx)),
      phase: 'Failed',
      reason: 'PatchNameInUse',
      message: `LivePatch ${patchNameOwner} already rolls out patchName ${lp.spec.patchName}; nodes know a patch by this name only, so this one does nothing. Give it another patchName (a new LivePatch) or delete ${patchNameOwner}`,
    };
  }
  if (lp.spec.state === 'Disabled') return unpatch(ctx, { kind: 'disable' });
  const abort = abortAnnotation(lp);
  if (abort.kind === 'current')
    return unpatch(ctx, { kind: 'abort', ...(abort.by ? { by: abort.by } : {}) });
  const phase = lp.status?.phase;
  if (ctx.sameGeneration && (phase === 'RollingBack' || phase === 'RolledBack'))
    return unpatch(ctx, { kind: 'rollback' });
  const plan = enable(ctx);
  const retry = freshAttempt(ctx);
  return retry ? { ...plan, retry } : plan;
}

/** A new generation after RolledBack or Failed is a fresh attempt, whether `kubectl livepatch retry` or an edit made it. */
function freshAttempt(ctx: Ctx): Retry | undefined {
  const after = ctx.lp.status?.phase;
  if (ctx.sameGeneration || (after !== 'RolledBack' && after !== 'Failed')) return undefined;
  const attempt = ctx.lp.spec.rollout.attempt;
  const by = requestedBy(ctx.lp);
  return { after, ...(attempt !== undefined ? { attempt } : {}), ...(by ? { by } : {}) };
}
