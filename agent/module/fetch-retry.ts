// When a module fetch that failed in a way a later attempt may fix is tried
// again, and when the agent stops trying: pure. A node that reported Failed
// while it waited would count against the LivePatch's failureBudget, so a
// mirror down for a few seconds could roll the fleet back; it stays Loading
// instead, and fails only once the outage outlasts the bound.
import { formatDuration } from '../../src/api/quantities.js';

export interface RetryPolicy {
  /** The wait after the first failed attempt; it doubles after each further one, up to maxDelayMs. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  /** No attempt starts later than this after the first failure: the node fails instead. */
  readonly giveUpAfterMs: number;
}

/** README "Bad input" and the agent's --module-retry-for say the same. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  firstDelayMs: 1000,
  maxDelayMs: 60_000,
  giveUpAfterMs: 5 * 60_000,
};

/** Why an attempt failed (ActionFailure's shape: actions.ts). */
export interface FetchFailure {
  readonly message: string;
  readonly retryable: boolean;
  readonly reason: string;
}

/** An attempt under way. Set from the second attempt: when the first one failed, and why the last one did. */
export interface Fetching {
  readonly kind: 'fetching';
  /** Attempts started, this one included. */
  readonly attempt: number;
  readonly firstFailure?: number;
  readonly lastCause?: string;
}

/** Attempt `attempt` failed; the next starts at retryAt. */
export interface Waiting {
  readonly kind: 'waiting';
  readonly attempt: number;
  readonly firstFailure: number;
  readonly retryAt: number;
  /** When the node fails unless an attempt before then gets the module. */
  readonly giveUpAt: number;
  readonly cause: string;
  readonly reason: string;
}

/** Where one entry's module fetch stands. */
export type FetchState =
  | Fetching
  | Waiting
  | { readonly kind: 'ready'; readonly path: string }
  | { readonly kind: 'failed'; readonly message: string; readonly reason: string };

export const FIRST_ATTEMPT: Fetching = { kind: 'fetching', attempt: 1 };

const iso = (ms: number): string => new Date(ms).toISOString();

/** The wait after failed attempt number `attempt` (1-based): doubling, capped. */
export function retryDelayMs(attempt: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, attempt - 1));
}

/** The next attempt, started now after `waiting`. */
export function nextAttempt(waiting: Waiting): Fetching {
  return {
    kind: 'fetching',
    attempt: waiting.attempt + 1,
    firstFailure: waiting.firstFailure,
    lastCause: waiting.cause,
  };
}

/**
 * Where a failed attempt leaves the fetch: waiting for the next one, or
 * failed: at once when no retry can help, or once the next attempt would
 * start past the bound.
 */
export function afterFailure(
  attempt: Fetching,
  failure: FetchFailure,
  now: number,
  policy: RetryPolicy,
  livePatch: string,
): FetchState {
  if (!failure.retryable)
    return { kind: 'failed', message: failure.message, reason: failure.reason };
  const firstFailure = attempt.firstFailure ?? now;
  const retryAt = now + retryDelayMs(attempt.attempt, policy);
  const giveUpAt = firstFailure + policy.giveUpAfterMs;
  if (retryAt <= giveUpAt)
    return {
      kind: 'waiting',
      attempt: attempt.attempt,
      firstFailure,
      retryAt,
      giveUpAt,
      cause: failure.message,
      reason: failure.reason,
    };
  const message =
    `${failure.message}: still failing after ${attempt.attempt} attempts over ` +
    `${formatDuration(now - firstFailure)}, so the agent stopped trying; nothing was loaded. ` +
    `Make the module reachable from the node (the mirror, its address, the network), then ` +
    `kubectl livepatch retry ${livePatch} (or edit the LivePatch)`;
  return { kind: 'failed', message, reason: failure.reason };
}

/** The status message of a fetch under way or waiting to retry. */
export function fetchMessage(state: FetchState): string {
  switch (state.kind) {
    case 'fetching':
      return state.lastCause === undefined
        ? 'fetching the module'
        : `fetching the module, attempt ${state.attempt} (the last one: ${state.lastCause})`;
    case 'waiting':
      return (
        `${state.cause}; attempt ${state.attempt} failed, retrying at ${iso(state.retryAt)} ` +
        `(the node fails if the module cannot be had by ${iso(state.giveUpAt)})`
      );
    case 'ready':
      return 'loading the module';
    case 'failed':
      return state.message;
  }
}
