// The rollout policy as a pure function: a LivePatch, where every node stands
// on it, and the time → which nodes get which desired entry, the phase, the
// step, and when to look again. Progress lives in LivePatch.status, so a
// restarted controller continues exactly where the last one stopped.
//
// This module picks which rule applies; the rules live beside it:
// enable-nodes.ts rolls forward (steps in rollout-steps.ts, stall.action in
// stall-policy.ts), unpatch-nodes.ts rolls back, disables and deletes, and
// desired-entries.ts writes and compares the nodes' entries.
//
// Rules (README "How a rollout proceeds" says the same for users):
// - Rolling, like the DaemonSet controller: maxUnavailable is the number of
//   nodes in flight at any moment (loading, in transition, or baking). A node
//   frees its slot when it has settled and then stayed Patched and healthy
//   for bakeTime (bake.ts); the next node in rolloutOrder (stable hash)
//   starts at once. A node that went silent (NotReady, agent gone)
//   mid-transition keeps its slot: the patch may be what took it down.
// - Targeted nodes that are NotReady or silent stay targets, as a DaemonSet's
//   NotReady nodes do: maxUnavailable and step percentages count them, and the
//   rollout is not Complete while one of them is not known to run the patch
//   (reason NodesUnreachable). Deleting the Node lets it go.
// - The health gate: a baking node whose Node turns NotReady, whose agent
//   stops reporting, or whose kernel gains a damage taint fails; it counts
//   against failureBudget like a stalled one.
// - Steps grow the patched set to a count or percentage; a pause step holds
//   for its duration, or until spec.rollout.paused changes. After the last step
//   the rollout continues to every targeted node.
// - A maintenance window (maintenance-window.ts) holds new starts while it is
//   closed, after spec.rollout.paused and pause steps: nodes in flight finish
//   and bake; the rules below (rollbacks, disable, delete) are never held.
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
// - A promotion (annotation livepatch.io/promote, rollout-steps.ts) ends the
//   pause step it names, in the visit of it it names (the step's start), or
//   with "full" skips every remaining step of the attempt. Read on every
//   pass like the abort; announced once (status.promotion, a Promoted Event).
// - A new generation: nodes already patched stay patched (their entry takes
//   the new generation, no kernel work); Stalled and Failed nodes of the old
//   generation are tried again; the steps start over, counting patched nodes.
//   While rolling forward, steps already passed stay passed and the pause held
//   keeps its start (toggling spec.rollout.paused is itself a new generation).
import type { LivePatch, UnhealthyNode } from '../api/generated/types.js';
import { scaleIntOrPercent } from '../api/quantities.js';
import { abortAnnotation, requestedBy } from '../api/steering.js';
import { enableNodes } from './enable-nodes.js';
import { readWindow, type WindowReading } from './maintenance-window.js';
import { planBase, type Plan, type PlanContext, type Retry } from './plan.js';
import { initialStep } from './rollout-steps.js';
import type { NodeSlot, TargetSlot } from './targets.js';
import { unpatchNodes } from './unpatch-nodes.js';

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

const windowOf = (lp: LivePatch, now: number): WindowReading | undefined =>
  lp.spec.rollout.window && readWindow(lp.spec.rollout.window, now);

/**
 * `patchNameOwner`: an older LivePatch with the same patchName. Nodes know a
 * patch by that name only, so this one must not touch them: it waits, Failed,
 * until the other is gone or this one is deleted. `seriesSequenceOwner`: an
 * older LivePatch with the same series and sequence; the same, until one of
 * them changes its sequence or goes.
 */
export function planRollout(
  lp: LivePatch,
  slots: readonly NodeSlot[],
  now: number,
  patchNameOwner?: string,
  seriesSequenceOwner?: string,
): Plan {
  const generation = lp.metadata.generation ?? 1;
  const targets = slots.filter((s): s is TargetSlot => s.kind === 'target');
  const targeted = targets.length + slots.filter((s) => s.kind === 'unknown').length;
  const ctx: PlanContext = {
    lp,
    slots,
    targets,
    targeted,
    now,
    generation,
    sameGeneration: lp.status?.observedGeneration === generation,
    maxUnavailable: scaleIntOrPercent(lp.spec.rollout.maxUnavailable, targeted),
    unhealthy: unhealthyNodes(lp, slots),
    window: windowOf(lp, now),
  };
  if (lp.metadata.deletionTimestamp) return unpatchNodes(ctx, { kind: 'delete' });
  if (patchNameOwner) {
    return {
      ...planBase(ctx, initialStep(ctx)),
      phase: 'Failed',
      reason: 'PatchNameInUse',
      message: `LivePatch ${patchNameOwner} already rolls out patchName ${lp.spec.patchName}; nodes know a patch by this name only, so this one does nothing. Give it another patchName (a new LivePatch) or delete ${patchNameOwner}`,
    };
  }
  const series = lp.spec.series;
  if (seriesSequenceOwner && series) {
    return {
      ...planBase(ctx, initialStep(ctx)),
      phase: 'Failed',
      reason: 'SeriesSequenceInUse',
      message: `LivePatch ${seriesSequenceOwner} already declares series ${series.name} sequence ${series.sequence}; which of the two builds is newer is not declared, so this one does nothing. Give it another spec.series.sequence, or delete ${seriesSequenceOwner}`,
    };
  }
  if (lp.spec.state === 'Disabled') return unpatchNodes(ctx, { kind: 'disable' });
  const abort = abortAnnotation(lp);
  if (abort.kind === 'current')
    return unpatchNodes(ctx, { kind: 'abort', ...(abort.by ? { by: abort.by } : {}) });
  const phase = lp.status?.phase;
  if (ctx.sameGeneration && (phase === 'RollingBack' || phase === 'RolledBack'))
    return unpatchNodes(ctx, { kind: 'rollback' });
  const plan = enableNodes(ctx);
  const retry = freshAttempt(ctx);
  return retry ? { ...plan, retry } : plan;
}

/** A new generation after RolledBack or Failed is a fresh attempt, whether `kubectl livepatch retry` or an edit made it. */
function freshAttempt(ctx: PlanContext): Retry | undefined {
  const after = ctx.lp.status?.phase;
  if (ctx.sameGeneration || (after !== 'RolledBack' && after !== 'Failed')) return undefined;
  const attempt = ctx.lp.spec.rollout.attempt;
  const by = requestedBy(ctx.lp);
  return { after, ...(attempt !== undefined ? { attempt } : {}), ...(by ? { by } : {}) };
}
