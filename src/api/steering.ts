// How a LivePatch's steering annotations read: the abort a user asked for and
// who asked. Pure; the controller acts on them and the plugin shows them.
import type { LivePatch } from './generated/types.js';
import { STEERING_ANNOTATIONS } from './constants.js';

/** The abort annotation, as the controller understands it. */
export type AbortAnnotation =
  | { readonly kind: 'none' }
  /** Names the current generation: roll it back. */
  | { readonly kind: 'current'; readonly generation: number; readonly by?: string }
  /** Names an older generation: a later spec change (a retry, an edit) superseded it. */
  | { readonly kind: 'stale'; readonly generation: number }
  | { readonly kind: 'invalid'; readonly value: string };

const GENERATION = /^[1-9][0-9]{0,15}$/;

export function requestedBy(lp: LivePatch): string | undefined {
  return lp.metadata.annotations?.[STEERING_ANNOTATIONS.requestedBy] || undefined;
}

export function abortAnnotation(lp: LivePatch): AbortAnnotation {
  const value = lp.metadata.annotations?.[STEERING_ANNOTATIONS.abort];
  if (value === undefined) return { kind: 'none' };
  if (!GENERATION.test(value.trim())) return { kind: 'invalid', value };
  const generation = Number(value);
  if (generation !== (lp.metadata.generation ?? 1)) return { kind: 'stale', generation };
  const by = requestedBy(lp);
  return { kind: 'current', generation, ...(by ? { by } : {}) };
}

/** " by alice", or nothing when nobody is named. */
export const byWhom = (by: string | undefined): string => (by ? ` by ${by}` : '');
