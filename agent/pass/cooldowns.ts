// A patch whose last action failed rests before the next one, so that a busy
// kernel or a refused module is not hammered once a second: pure, the clock
// passed in.
import type { ObservedPatch } from '../../src/api/generated/types.js';
import type { ActionFailure } from './actions.js';
import type { NodeAction } from './node-machine.js';

/** How long a patch rests after a failure a later try may fix (a busy kernel, a failed unload). */
export const FAILURE_REST_MS = 10_000;
/** How long it rests after a refusal: only a new generation of the LivePatch is likely to differ. */
export const REFUSAL_REST_MS = 60_000;
/** Never wake for a cooldown's end sooner than this: its end is not worth a busy loop. */
const MIN_WAKE_MS = 100;

/** No new action on a patch before `until`; `entry` is what it reports meanwhile. */
export interface Cooldown {
  readonly until: number;
  readonly retryable: boolean;
  readonly entry: ObservedPatch;
}

/** By LivePatch. */
export type Cooldowns = ReadonlyMap<string, Cooldown>;

/**
 * Ends the cooldowns that are over. A transient failure is forgotten, so the
 * next pass tries afresh; a refusal stays Failed for its generation.
 */
export function expireCooldowns(
  cooldowns: Cooldowns,
  patches: readonly ObservedPatch[],
  now: number,
): { cooldowns: Cooldowns; patches: readonly ObservedPatch[] } {
  const over = [...cooldowns].filter(([, c]) => c.until <= now);
  const forget = new Set(over.filter(([, c]) => c.retryable).map(([livePatch]) => livePatch));
  return {
    cooldowns: new Map([...cooldowns].filter(([, c]) => c.until > now)),
    patches: patches.filter((p) => !forget.has(p.livePatch) || p.phase !== 'Failed'),
  };
}

/**
 * Records a failed action. An unload that fails keeps the entry's phase (a
 * Stalled node stays Stalled and is never loaded again); anything else is
 * Failed. Either way the patch rests: `failureRestMs` after a failure a later
 * try may fix, REFUSAL_REST_MS after a refusal.
 */
export function restAfterFailure(
  patches: readonly ObservedPatch[],
  cooldowns: Cooldowns,
  failed: { action: NodeAction; failure: ActionFailure; now: number; failureRestMs: number },
): { cooldowns: Cooldowns; patches: readonly ObservedPatch[] } {
  const { action, failure } = failed;
  const decided = patches.find((p) => p.livePatch === action.livePatch);
  if (!decided) return { cooldowns, patches };
  const entry: ObservedPatch =
    action.kind === 'unload'
      ? { ...decided, message: `${decided.message ?? ''}; unloading failed: ${failure.message}` }
      : { ...decided, phase: 'Failed', message: failure.message };
  const retryable = failure.retryable || action.kind === 'unload';
  const until = failed.now + (retryable ? failed.failureRestMs : REFUSAL_REST_MS);
  return {
    cooldowns: new Map([...cooldowns, [action.livePatch, { until, retryable, entry }]]),
    patches: patches.map((p) => (p.livePatch === action.livePatch ? entry : p)),
  };
}

/** What each resting patch reports: its failure, not what the state machine would make of it. */
export function heldBack(patches: readonly ObservedPatch[], cooldowns: Cooldowns): ObservedPatch[] {
  return patches.map((p) => cooldowns.get(p.livePatch)?.entry ?? p);
}

/** How long until the first cooldown ends, if any runs. */
export function nextCooldownEnd(cooldowns: Cooldowns, now: number): number | undefined {
  const ends = [...cooldowns.values()].map((c) => Math.max(MIN_WAKE_MS, c.until - now));
  return ends.length ? Math.min(...ends) : undefined;
}
