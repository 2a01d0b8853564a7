// Where a rollout stands in spec.rollout.steps: the step it is at, carried
// across passes (and across a new generation) in LivePatch.status, and
// whether that step grows the patched set or holds at a pause. Pure.
import type { LivePatchPhase, PauseStep } from '../api/generated/types.js';
import { durationMs } from '../api/quantities.js';
import type { PlanContext, StepState } from './plan.js';

export type StepOutcome =
  | { readonly kind: 'grow'; readonly goal: number; readonly step: StepState }
  | {
      readonly kind: 'hold';
      readonly step: StepState;
      readonly message: string;
      readonly requeueAfterMs?: number;
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

/** A pause step holds, or undefined once it is over. */
function pauseHold(ctx: PlanContext, step: StepState, pause: PauseStep): StepOutcome | undefined {
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
  ctx: PlanContext,
  start: StepState,
  settled: number,
  inFlight: number,
): StepOutcome {
  const steps = ctx.lp.spec.rollout.steps ?? [];
  const total = ctx.targeted;
  const passed = previousStep(ctx)?.index ?? 0;
  let step = start;
  for (; step.index < steps.length; step = enterStep(ctx, step.index + 1)) {
    const s = steps[step.index] ?? {};
    if (s.pause) {
      const hold = step.index < passed ? undefined : pauseHold(ctx, step, s.pause);
      if (hold) return hold;
      continue;
    }
    // A step the last generation had passed is passed: stopping there while nodes are in flight
    // would record it as current, and the next pass would hold again at the pauses after it.
    if (step.index < passed) continue;
    const goal = Math.min(total, s.nodes ?? Math.ceil(((s.percent ?? 100) * total) / 100));
    if (settled < goal || inFlight > 0) return { kind: 'grow', goal, step };
  }
  return { kind: 'grow', goal: total, step };
}
