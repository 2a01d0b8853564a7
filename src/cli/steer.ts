// What `kubectl livepatch abort` and `retry` would write, or why they refuse,
// from the LivePatch as read. Pure: the plugin reads, decides here, and writes
// with the resourceVersion it read, so a LivePatch that changed in between is
// read and decided again rather than steered on a stale picture.
import { STEERING_ANNOTATIONS } from '../api/constants.js';
import type { LivePatch } from '../api/generated/types.js';
import { abortAnnotation, abortValue } from '../api/steering.js';

export type Steer =
  | { readonly kind: 'refuse'; readonly message: string }
  | {
      readonly kind: 'patch';
      /** A JSON merge patch, guarded by the resourceVersion read. */
      readonly patch: object;
      /** What was done and what to watch, from the LivePatch as written. */
      readonly done: (written: LivePatch) => string;
    };

export const watchHint = (name: string): string => `Watch it: kubectl livepatch status ${name} -w`;

/** Failed because another LivePatch holds what this one claims (planner.ts): what it holds. */
export const CLAIMED: Readonly<Record<string, string>> = {
  PatchNameInUse: 'owns its patchName',
  SeriesSequenceInUse: 'declares its series sequence',
};

/** The phase the status gives for the current generation; undefined while the controller has not caught up. */
export function currentPhase(lp: LivePatch): string | undefined {
  const s = lp.status;
  // No phase: the controller has never written (the API server fills in observedGeneration 0).
  if (!s?.phase) return 'Pending';
  return s.observedGeneration === (lp.metadata.generation ?? 1) ? s.phase : undefined;
}

export const progressingReason = (lp: LivePatch): string | undefined =>
  lp.status?.conditions?.find((c) => c.type === 'Progressing')?.reason;

function abortRefusal(lp: LivePatch, rollbackComplete: boolean): string | undefined {
  const name = lp.metadata.name ?? '';
  const abort = abortAnnotation(lp);
  if (lp.metadata.deletionTimestamp)
    return `${name} is being deleted: the controller is already unpatching every node`;
  if (lp.spec.state === 'Disabled')
    return `${name} has spec.state Disabled: the controller is already unpatching every node, nothing to abort`;
  const phase = currentPhase(lp);
  if (phase === 'RolledBack' || phase === 'Disabled')
    return `${name} is already ${phase}: no node has the patch. To roll out again: kubectl livepatch retry ${name}`;
  if (abort.kind === 'current')
    return `${abort.names} of ${name} is already aborted (phase ${lp.status?.phase ?? 'Pending'}): it stays aborted until kubectl livepatch retry ${name}. ${watchHint(name)}`;
  if (phase === 'RollingBack')
    return `${name} is already rolling back (stall.action Rollback). ${watchHint(name)}`;
  const claimed = phase === 'Failed' ? CLAIMED[progressingReason(lp) ?? ''] : undefined;
  if (claimed)
    return `${name} rolls out nothing: another LivePatch ${claimed} (see kubectl livepatch status ${name})`;
  if (phase === 'Complete' && !rollbackComplete)
    return (
      `${name} is Complete: every targeted node has the patch. Aborting it now unpatches every node and ends ` +
      `RolledBack (reason Aborted), from where kubectl livepatch retry rolls it out again. If that is what you ` +
      `want: kubectl livepatch abort ${name} --rollback-complete. To take the patch off for good instead, set ` +
      `spec.state: Disabled`
    );
  return undefined;
}

/**
 * Written with the resourceVersion read: a LivePatch changed meanwhile is read
 * and decided again. `annotations` are the steering ones this write sets (null
 * removes one); requested-by always names who asked.
 */
export function steeringMetadata(
  lp: LivePatch,
  annotations: Readonly<Record<string, string | null>>,
  by: string | undefined,
): { resourceVersion?: string; annotations: Record<string, string | null> } {
  return {
    resourceVersion: lp.metadata.resourceVersion,
    annotations: { ...annotations, [STEERING_ANNOTATIONS.requestedBy]: by ?? null },
  };
}

/** Roll the current generation back now, as stall.action Rollback would. */
export function planAbort(
  lp: LivePatch,
  o: { readonly rollbackComplete: boolean; readonly by?: string },
): Steer {
  const refusal = abortRefusal(lp, o.rollbackComplete);
  if (refusal) return { kind: 'refuse', message: refusal };
  const name = lp.metadata.name ?? '';
  const value = abortValue(lp);
  return {
    kind: 'patch',
    patch: { metadata: steeringMetadata(lp, { [STEERING_ANNOTATIONS.abort]: value }, o.by) },
    done: () =>
      `livepatch.livepatch.io/${name} aborted: ${STEERING_ANNOTATIONS.abort}=${value}. The controller ` +
      `unpatches every node that has the patch, in-flight ones first, maxUnavailable at a time, and ends ` +
      `RolledBack with reason Aborted; pausing, resuming or editing it keeps it aborted.\n${watchHint(name)}\n` +
      `Then, to roll out again: kubectl livepatch retry ${name}\n`,
  };
}

const RETRY_HINT: Record<string, (name: string) => string> = {
  Complete: () => 'no targeted node stalled or failed, nothing to retry',
  Progressing: (name) => `it is still rolling out; to stop it: kubectl livepatch abort ${name}`,
  Paused: (name) =>
    `it is paused, not over: kubectl livepatch resume ${name}, or stop it: kubectl livepatch abort ${name}`,
  Pending: (name) => `it has not started; to stop it: kubectl livepatch abort ${name}`,
  RollingBack: (name) => `wait until it is RolledBack: kubectl livepatch status ${name} -w`,
  Disabling: () => 'spec.state is Disabled; set it to Enabled to roll the patch out again',
  Disabled: () => 'spec.state is Disabled; set it to Enabled to roll the patch out again',
};

const disabled = (lp: LivePatch, phase: string): boolean =>
  lp.spec.state === 'Disabled' || phase === 'Disabling' || phase === 'Disabled';

/** A failureBudget or stall.action Ignore lets a rollout go on, even complete, past such nodes. */
const hasFailures = (lp: LivePatch): boolean =>
  (lp.status?.nodes?.stalled ?? 0) + (lp.status?.nodes?.failed ?? 0) > 0;

function retryRefusal(lp: LivePatch): string | undefined {
  const name = lp.metadata.name ?? '';
  if (lp.metadata.deletionTimestamp) return `${name} is being deleted: nothing to retry`;
  const phase = currentPhase(lp);
  if (phase === undefined)
    return (
      `the controller has not yet acted on generation ${lp.metadata.generation ?? 1} of ${name} (its status ` +
      `describes generation ${lp.status?.observedGeneration ?? 0}): that change is already a fresh attempt. ${watchHint(name)}`
    );
  if (phase === 'RolledBack' || phase === 'Failed') return undefined;
  const hint = RETRY_HINT[phase]?.(name) ?? `see kubectl livepatch status ${name}`;
  if (disabled(lp, phase)) return `${name} is ${phase}: ${hint}`;
  if (hasFailures(lp)) return undefined;
  return `${name} is ${phase}: retry is for a rollout that RolledBack or Failed, or has nodes that stalled or failed; ${hint}`;
}

/**
 * A fresh attempt: bump spec.rollout.attempt, a new generation the controller
 * rolls out afresh (its stalled and failed nodes tried again).
 */
export function planRetry(lp: LivePatch, o: { readonly by?: string } = {}): Steer {
  const refusal = retryRefusal(lp);
  if (refusal) return { kind: 'refuse', message: refusal };
  const name = lp.metadata.name ?? '';
  const attempt = (lp.spec.rollout.attempt ?? 0) + 1;
  const after = lp.status?.phase ?? 'Failed';
  return {
    kind: 'patch',
    patch: {
      // The abort and the promotion named the attempt this retry leaves behind: they would do nothing, so they go.
      metadata: steeringMetadata(
        lp,
        { [STEERING_ANNOTATIONS.abort]: null, [STEERING_ANNOTATIONS.promote]: null },
        o.by,
      ),
      spec: { rollout: { attempt } },
    },
    done: (written) =>
      `livepatch.livepatch.io/${name} retried: spec.rollout.attempt ${attempt}, generation ` +
      `${written.metadata.generation ?? ''}. A fresh rollout after ${after}: the steps start over, nodes that ` +
      `stalled or failed are tried again, patched nodes stay patched.\n${watchHint(name)}\n`,
  };
}

/** What `pause` and `resume` add when the LivePatch written is aborted: neither ends an abort. */
export function pauseNote(written: LivePatch): string {
  const abort = abortAnnotation(written);
  if (abort.kind !== 'current') return '';
  const name = written.metadata.name ?? '';
  return (
    `note: ${abort.names} of ${name} is aborted (${STEERING_ANNOTATIONS.abort}): it stays rolled back ` +
    `whether paused or not. To roll out again: kubectl livepatch retry ${name}\n`
  );
}
