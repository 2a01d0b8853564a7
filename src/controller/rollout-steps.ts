// Where a rollout stands in spec.rollout.steps: the step it is at, carried
// across passes (and across a new generation) in LivePatch.status, and
// whether that step grows the patched set or holds at a pause. Pure.
import type { LivePatchPhase, PauseStep, RolloutStep } from '../api/generated/types.js';
import { durationMs } from '../api/quantities.js';
import { promoteAnnotation, type PromoteAnnotation } from '../api/steering.js';
import type { PlanContext, Promoted, StepState } from './plan.js';

export type StepOutcome =
  | {
      readonly kind: 'grow';
      readonly goal: number;
      readonly step: StepState;
      readonly promoted?: Promoted;
    }
  | {
      readonly kind: 'hold';
      readonly step: StepState;
      readonly message: string;
      readonly requeueAfterMs?: number;
      readonly promoted?: Promoted;
    };

const ROLLING_FORWARD = new Set<LivePatchPhase | undefined>([
  'Progressing',
  'Paused',
  'Waiting',
  'Complete',
  'Failed',
]);

/**
 * Where the last generation's rollout stood, if it was rolling forward. Any
 * spec edit is a new generation, toggling spec.rollout.paused included: the
 * steps already passed stay passed and the one being held keeps its start, or
 * every edit would re-hold the pauses and an empty pause could never be released.
 */
function previousStep(ctx: PlanContext): StepState | undefined {
  const s = ctx.lp.status;
  if (ctx.sameGeneration || !ROLLING_FORWARD.has(s?.phase)) return undefined;
  if (s?.currentStep === undefined || !s.currentStepStartTime) return undefined;
  return {
    index: s.currentStep,
    startTime: Date.parse(s.currentStepStartTime),
    pausedAtStart: s.pausedAtStepStart ?? ctx.lp.spec.rollout.paused,
  };
}

function enterStep(ctx: PlanContext, index: number): StepState {
  const previous = previousStep(ctx);
  if (previous?.index === index) return previous;
  return { index, startTime: ctx.now, pausedAtStart: ctx.lp.spec.rollout.paused };
}

/** The step this pass starts from: the one in status, or the first of a new generation. */
export function initialStep(ctx: PlanContext): StepState {
  const s = ctx.lp.status;
  const paused = ctx.lp.spec.rollout.paused;
  if (!ctx.sameGeneration || !s) return enterStep(ctx, 0);
  return {
    index: s.currentStep ?? 0,
    startTime: s.currentStepStartTime ? Date.parse(s.currentStepStartTime) : ctx.now,
    pausedAtStart: s.pausedAtStepStart ?? paused,
  };
}

/** `kubectl livepatch promote NAME`: the hint every held pause gives. */
const promoteHint = (ctx: PlanContext): string =>
  `, or until kubectl livepatch promote ${ctx.lp.metadata.name ?? ''}`;

/** A pause step holds, or undefined once it is over. */
function pauseHold(
  ctx: PlanContext,
  step: StepState,
  pause: PauseStep,
): Extract<StepOutcome, { kind: 'hold' }> | undefined {
  if (pause.duration !== undefined) {
    const remaining = step.startTime + durationMs(pause.duration) - ctx.now;
    if (remaining <= 0) return undefined;
    return {
      kind: 'hold',
      step,
      message: `paused at step ${step.index + 1} for ${pause.duration}${promoteHint(ctx)}`,
      requeueAfterMs: remaining,
    };
  }
  if (ctx.lp.spec.rollout.paused !== step.pausedAtStart) return undefined;
  return {
    kind: 'hold',
    step,
    message: `paused at step ${step.index + 1} until spec.rollout.paused is changed${promoteHint(ctx)}`,
  };
}

/**
 * A promotion ends the pause it names in the visit it names (the step's start),
 * so a lingering one never ends a later pause, nor the same pause held again
 * when the steps start over; a timed pause is cut short like an empty one.
 */
function promotes(
  promotion: PromoteAnnotation,
  step: StepState,
): promotion is Extract<PromoteAnnotation, { kind: 'step' }> {
  return (
    promotion.kind === 'step' &&
    promotion.step === step.index + 1 &&
    promotion.since === step.startTime
  );
}

const attemptOf = (ctx: PlanContext): number => ctx.lp.spec.rollout.attempt ?? 0;
const byOf = (p: { readonly by?: string }): { by?: string } => (p.by ? { by: p.by } : {});

/**
 * --full: every remaining step is skipped and the rollout goes on to every
 * targeted node. Announced once: not again when an edit walks the steps anew
 * past the end they already reached.
 */
function skipSteps(
  ctx: PlanContext,
  start: StepState,
  promotion: Extract<PromoteAnnotation, { kind: 'full' }>,
): StepOutcome {
  const steps = ctx.lp.spec.rollout.steps ?? [];
  const total = ctx.targeted;
  if (start.index >= steps.length) return { kind: 'grow', goal: total, step: start };
  const end = enterStep(ctx, steps.length);
  if ((previousStep(ctx)?.index ?? 0) >= steps.length)
    return { kind: 'grow', goal: total, step: end };
  const promoted: Promoted = { kind: 'full', attempt: attemptOf(ctx), ...byOf(promotion) };
  return { kind: 'grow', goal: total, step: end, promoted };
}

/** The patched set a nodes or percent step grows to. */
const stepGoal = (s: RolloutStep, total: number): number =>
  Math.min(total, s.nodes ?? Math.ceil(((s.percent ?? 100) * total) / 100));

/** The walk of resolveStep, and the pause step (1-based) a promotion ended on the way. */
function walkSteps(
  ctx: PlanContext,
  start: StepState,
  settled: number,
  inFlight: number,
  promotion: PromoteAnnotation,
): { outcome: StepOutcome; promotedStep?: number } {
  const steps = ctx.lp.spec.rollout.steps ?? [];
  const total = ctx.targeted;
  const passed = previousStep(ctx)?.index ?? 0;
  let promotedStep: number | undefined;
  let step = start;
  for (; step.index < steps.length; step = enterStep(ctx, step.index + 1)) {
    const s = steps[step.index] ?? {};
    if (s.pause) {
      const hold = step.index < passed ? undefined : pauseHold(ctx, step, s.pause);
      if (hold && promotes(promotion, step)) promotedStep = step.index + 1;
      else if (hold) return { outcome: hold, promotedStep };
      continue;
    }
    // A step the last generation had passed is passed: stopping there while nodes are in flight
    // would record it as current, and the next pass would hold again at the pauses after it.
    if (step.index < passed) continue;
    const goal = stepGoal(s, total);
    if (settled < goal || inFlight > 0)
      return { outcome: { kind: 'grow', goal, step }, promotedStep };
  }
  return { outcome: { kind: 'grow', goal: total, step }, promotedStep };
}

/** Walks the steps from the current one, advancing past every step already satisfied. */
export function resolveStep(
  ctx: PlanContext,
  start: StepState,
  settled: number,
  inFlight: number,
): StepOutcome {
  const promotion = promoteAnnotation(ctx.lp);
  if (promotion.kind === 'full') return skipSteps(ctx, start, promotion);
  const { outcome, promotedStep } = walkSteps(ctx, start, settled, inFlight, promotion);
  if (promotedStep === undefined || promotion.kind !== 'step') return outcome;
  const promoted: Promoted = {
    kind: 'step',
    attempt: attemptOf(ctx),
    step: promotedStep,
    ...byOf(promotion),
  };
  return { ...outcome, promoted };
}
