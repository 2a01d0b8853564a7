// How a LivePatch's steering annotations read: the abort a user asked for and
// who asked. Pure; the controller acts on them and the plugin shows them.
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
