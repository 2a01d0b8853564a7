// Rollback, abort, Disabled and deletion: every node holding the patch
// switches to a Disabled entry, maxUnavailable at a time, in-flight enables
// first; deletion then removes the entries and releases the finalizer. Pure.
import type { DesiredPatch, LivePatchPhase } from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import { clip, listSome } from '../api/listing.js';
import { byWhom } from '../api/steering.js';
import { sameEntry, specEntry } from './desired-entries.js';
import { LISTED_NODES, planBase, type Plan, type PlanBase, type PlanContext } from './plan.js';
import { initialStep } from './rollout-steps.js';
import type { Progress } from './targets.js';

export type UnpatchMode =
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

function holders(ctx: PlanContext): Holder[] {
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
const needsDisable = (ctx: PlanContext, h: Holder): boolean =>
  h.desired.state === 'Enabled' ||
  (h.progress === 'none' && h.desired.generation !== ctx.generation);

function unpatchFailed(
  ctx: PlanContext,
  b: PlanBase,
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
  ctx: PlanContext,
  holders: readonly Holder[],
  writes: Map<NodeName, DesiredPatch | null>,
): void {
  for (const h of holders) {
    if (h.desired.state !== 'Disabled' || h.desired.generation !== ctx.generation) continue;
    const fresh = specEntry(ctx, h.desired.module, 'Disabled');
    if (!writes.has(h.name) && !sameEntry(fresh, h.desired)) writes.set(h.name, fresh);
  }
}

/** Every node holding the patch unpatches, maxUnavailable at a time. */
export function unpatchNodes(ctx: PlanContext, mode: UnpatchMode): Plan {
  const b = planBase(ctx, initialStep(ctx));
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
