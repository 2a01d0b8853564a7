// What `kubectl livepatch promote` would write, or why it refuses, from the
// LivePatch as read. Pure, like steer.ts: one annotation naming the attempt
// and the pause step held (or, with --full, the attempt alone), written with
// the resourceVersion read.
import { STEERING_ANNOTATIONS } from '../api/constants.js';
import type { LivePatch, RolloutStep } from '../api/generated/types.js';
import {
  abortAnnotation,
  promoteAnnotation,
  promoteFullValue,
  promoteStepValue,
} from '../api/steering.js';
import {
  CLAIMED,
  currentPhase,
  progressingReason,
  steeringMetadata,
  watchHint,
  type Steer,
} from './steer.js';

/** A step as the spec writes it: "nodes 3", "percent 50", "pause 10m", "pause". */
export function describeStep(s: RolloutStep | undefined): string {
  if (s?.pause) return s.pause.duration ? `pause ${s.pause.duration}` : 'pause';
  if (s?.nodes !== undefined) return `nodes ${s.nodes}`;
  return `percent ${s?.percent ?? 100}`;
}

/** The pause step the status says the rollout is held at, this generation. */
export function heldPause(lp: LivePatch): { index: number; since: string } | undefined {
  const s = lp.status;
  const index = s?.currentStep;
  if (currentPhase(lp) !== 'Paused' && currentPhase(lp) !== 'Waiting') return undefined;
  if (index === undefined || !s?.currentStepStartTime) return undefined;
  if (!lp.spec.rollout.steps?.[index]?.pause) return undefined;
  return { index, since: s.currentStepStartTime };
}

/** Phases with no rollout going forward, and what to say. */
const NOTHING_TO_PROMOTE: Readonly<Record<string, (name: string) => string>> = {
  Complete: (name) => `${name} is Complete: every targeted node has the patch, nothing to promote`,
  RolledBack: (name) =>
    `${name} is RolledBack: nothing to promote. To roll out again: kubectl livepatch retry ${name}`,
  Failed: (name) =>
    `${name} is Failed: its stall policy halted it, which a promotion does not lift. To try again: kubectl livepatch retry ${name}`,
  RollingBack: (name) => `${name} is RollingBack: no rollout going forward, nothing to promote`,
  Disabling: (name) => `${name} is Disabling: no rollout going forward, nothing to promote`,
  Disabled: (name) => `${name} is Disabled: no rollout going forward, nothing to promote`,
};

/** Why nothing can be promoted, whatever the form: no rollout going forward. */
function notRollingForward(lp: LivePatch): string | undefined {
  const name = lp.metadata.name ?? '';
  if (lp.metadata.deletionTimestamp) return `${name} is being deleted: nothing to promote`;
  if (lp.spec.state === 'Disabled')
    return `${name} has spec.state Disabled: the controller is unpatching every node, nothing to promote`;
  const abort = abortAnnotation(lp);
  if (abort.kind === 'current')
    return `${abort.names} of ${name} is aborted: nothing to promote. To roll out again: kubectl livepatch retry ${name}`;
  const phase = currentPhase(lp);
  if (phase === undefined)
    return (
      `the controller has not yet acted on generation ${lp.metadata.generation ?? 1} of ${name} (its status ` +
      `describes generation ${lp.status?.observedGeneration ?? 0}), so which step it holds at is not known ` +
      `yet: try again in a moment. ${watchHint(name)}`
    );
  const claimed = phase === 'Failed' ? CLAIMED[progressingReason(lp) ?? ''] : undefined;
  if (claimed)
    return `${name} rolls out nothing: another LivePatch ${claimed} (see kubectl livepatch status ${name})`;
  return NOTHING_TO_PROMOTE[phase]?.(name);
}

/** What follows pause step `index`: the next step, or every node. */
function after(lp: LivePatch, index: number): string {
  const steps = lp.spec.rollout.steps ?? [];
  const next = index + 1;
  return next < steps.length
    ? `goes on with step ${next + 1} (${describeStep(steps[next])})`
    : 'goes on to every targeted node, at most maxUnavailable at a time';
}

/** spec.rollout.paused holds the rollout whatever the steps say. */
function pausedNote(lp: LivePatch): string {
  const name = lp.metadata.name ?? '';
  return lp.spec.rollout.paused
    ? `note: spec.rollout.paused is true: no node starts until kubectl livepatch resume ${name}\n`
    : '';
}

function promoteStep(lp: LivePatch, by: string | undefined): Steer {
  const name = lp.metadata.name ?? '';
  const steps = lp.spec.rollout.steps ?? [];
  const held = heldPause(lp);
  if (!held) {
    const at = lp.status?.currentStep ?? 0;
    const where =
      at < steps.length
        ? `at step ${at + 1} of ${steps.length} (${describeStep(steps[at])})`
        : 'past its last step';
    const full =
      at < steps.length
        ? ` To skip every remaining step: kubectl livepatch promote ${name} --full`
        : '';
    return {
      kind: 'refuse',
      message: `${name} is not held at a pause step (phase ${currentPhase(lp) ?? 'Pending'}, ${where}): nothing to promote.${full}`,
    };
  }
  const value = promoteStepValue(lp, held.index, held.since);
  const key = STEERING_ANNOTATIONS.promote;
  if (lp.metadata.annotations?.[key] === value)
    return {
      kind: 'refuse',
      message: `pause step ${held.index + 1} of ${name} is already promoted (${key}=${value}): the controller ends it on its next pass. ${watchHint(name)}`,
    };
  return {
    kind: 'patch',
    patch: { metadata: steeringMetadata(lp, { [key]: value }, by) },
    done: (written) =>
      `livepatch.livepatch.io/${name} promoted: ${key}=${value}. The controller ends pause step ` +
      `${held.index + 1} (that one only) and ${after(written, held.index)}; a later pause step holds ` +
      `again.\n${pausedNote(written)}${watchHint(name)}\n`,
  };
}

function promoteFull(lp: LivePatch, by: string | undefined): Steer {
  const name = lp.metadata.name ?? '';
  const steps = lp.spec.rollout.steps ?? [];
  const key = STEERING_ANNOTATIONS.promote;
  const value = promoteFullValue(lp);
  if (promoteAnnotation(lp).kind === 'full')
    return {
      kind: 'refuse',
      message: `${name} is already promoted in full (${key}=${value}): its steps no longer apply. ${watchHint(name)}`,
    };
  if ((lp.status?.phase ? (lp.status.currentStep ?? 0) : 0) >= steps.length)
    return {
      kind: 'refuse',
      message: `${name} has no step left: it already rolls out to every targeted node, at most maxUnavailable at a time. ${watchHint(name)}`,
    };
  return {
    kind: 'patch',
    patch: { metadata: steeringMetadata(lp, { [key]: value }, by) },
    done: (written) =>
      `livepatch.livepatch.io/${name} promoted in full: ${key}=${value}. The controller skips every ` +
      `remaining step of attempt ${written.spec.rollout.attempt ?? 0}, pauses included, and rolls out to ` +
      `every targeted node, at most maxUnavailable at a time; edits keep it, kubectl livepatch retry ` +
      `starts a new attempt with its steps.\n${pausedNote(written)}${watchHint(name)}\n`,
  };
}

/** End the pause step held (only that one), or with `full` every remaining step. */
export function planPromote(
  lp: LivePatch,
  o: { readonly full: boolean; readonly by?: string },
): Steer {
  const refusal = notRollingForward(lp);
  if (refusal) return { kind: 'refuse', message: refusal };
  return o.full ? promoteFull(lp, o.by) : promoteStep(lp, o.by);
}
