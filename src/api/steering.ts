// How a LivePatch's steering annotations read: the abort and the promotion a
// user asked for, and who asked. Pure; the controller acts on them and the
// plugin writes and shows them.
import type { LivePatch } from './generated/types.js';
import { STEERING_ANNOTATIONS } from './constants.js';

/** The abort annotation, as the controller understands it. */
export type AbortAnnotation =
  | { readonly kind: 'none' }
  /** Names the current attempt ("attempt 2"), or the current generation: roll it back. */
  | { readonly kind: 'current'; readonly names: string; readonly by?: string }
  /** Names an earlier attempt (a retry superseded it), or an older generation. */
  | { readonly kind: 'stale'; readonly names: string; readonly current: string }
  | { readonly kind: 'invalid'; readonly value: string };

const ATTEMPT = /^attempt-(0|[1-9][0-9]{0,15})$/;
/** What plugins before attempt-N wrote: a generation, which any edit (a pause) left behind. */
const GENERATION = /^[1-9][0-9]{0,15}$/;

export function requestedBy(lp: LivePatch): string | undefined {
  return lp.metadata.annotations?.[STEERING_ANNOTATIONS.requestedBy] || undefined;
}

/**
 * What `kubectl livepatch abort` writes: the attempt, not the generation, so
 * that pausing, resuming or any other edit keeps the rollout aborted and only
 * a retry (which increments spec.rollout.attempt) ends it.
 */
export const abortValue = (lp: LivePatch): string => `attempt-${lp.spec.rollout.attempt ?? 0}`;

export function abortAnnotation(lp: LivePatch): AbortAnnotation {
  const value = lp.metadata.annotations?.[STEERING_ANNOTATIONS.abort];
  if (value === undefined) return { kind: 'none' };
  const trimmed = value.trim();
  const attempt = ATTEMPT.exec(trimmed)?.[1];
  const [names, current] =
    attempt !== undefined
      ? [`attempt ${attempt}`, `attempt ${lp.spec.rollout.attempt ?? 0}`]
      : GENERATION.test(trimmed)
        ? [`generation ${Number(trimmed)}`, `generation ${lp.metadata.generation ?? 1}`]
        : [];
  if (names === undefined || current === undefined) return { kind: 'invalid', value };
  if (names !== current) return { kind: 'stale', names, current };
  const by = requestedBy(lp);
  return { kind: 'current', names, ...(by ? { by } : {}) };
}

/** " by alice", or nothing when nobody is named. */
export const byWhom = (by: string | undefined): string => (by ? ` by ${by}` : '');

/** The promote annotation, as the controller understands it. */
export type PromoteAnnotation =
  | { readonly kind: 'none' }
  /** End pause step `step` (1-based) of the current attempt, in its visit that began at `since`. */
  | {
      readonly kind: 'step';
      readonly step: number;
      readonly since: number;
      readonly value: string;
      readonly by?: string;
    }
  /** Skip every remaining step of the current attempt. */
  | { readonly kind: 'full'; readonly value: string; readonly by?: string }
  /** Names an earlier attempt (a retry superseded it). */
  | { readonly kind: 'stale'; readonly names: string; readonly current: string }
  | { readonly kind: 'invalid'; readonly value: string };

const PROMOTE =
  /^attempt-(0|[1-9][0-9]{0,15})\/(?:full|step-([1-9][0-9]?)@([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z))$/;

const currentAttempt = (lp: LivePatch): number => lp.spec.rollout.attempt ?? 0;

/**
 * What `kubectl livepatch promote` writes for the pause step held at `index`
 * (0-based, as status.currentStep counts) since `since` (status.currentStepStartTime).
 * The step's start names this one visit of it: when the steps start over in
 * the same attempt (Disabled then Enabled, an edit after a rollback), the
 * same step is held again and this promotion does not end it.
 */
export const promoteStepValue = (lp: LivePatch, index: number, since: string): string =>
  `attempt-${currentAttempt(lp)}/step-${index + 1}@${since}`;

/** What `kubectl livepatch promote --full` writes: every remaining step of this attempt. */
export const promoteFullValue = (lp: LivePatch): string => `attempt-${currentAttempt(lp)}/full`;

export function promoteAnnotation(lp: LivePatch): PromoteAnnotation {
  const value = lp.metadata.annotations?.[STEERING_ANNOTATIONS.promote];
  if (value === undefined) return { kind: 'none' };
  const m = PROMOTE.exec(value.trim());
  const since = m?.[3] === undefined ? undefined : Date.parse(m[3]);
  if (!m || Number.isNaN(since)) return { kind: 'invalid', value };
  const [names, current] = [`attempt ${m[1] ?? ''}`, `attempt ${currentAttempt(lp)}`];
  if (names !== current) return { kind: 'stale', names, current };
  const by = requestedBy(lp);
  const who = by ? { by } : {};
  const trimmed = value.trim();
  return m[2] === undefined || since === undefined
    ? { kind: 'full', value: trimmed, ...who }
    : { kind: 'step', step: Number(m[2]), since, value: trimmed, ...who };
}
