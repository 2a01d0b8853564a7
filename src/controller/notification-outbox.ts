// status.notifications as an outbox: a decision is recorded as pending in the
// status write that makes it, delivered after that write, and moved to done
// once delivered or given up. Each pass folds in how the deliveries since the
// last pass went: a failure is tried again after a backoff (or the receiver's
// Retry-After), up to a bound, then given up. Pure: the caller passes the
// time and the outcomes.
import type { NotificationOutbox, PendingNotification } from '../api/generated/types.js';
import type { DecisionNotice } from './notification-decisions.js';

/** status.notifications.pending's maxItems. */
export const MAX_PENDING = 16;
/** status.notifications.done's maxItems. */
export const MAX_DONE = 32;

export interface RetryPolicy {
  /** Tries in all, the first included; then the notification is given up. */
  readonly maxAttempts: number;
  readonly initialMs: number;
  readonly factor: number;
  readonly capMs: number;
}

/** 2 s, 4 s, 8 s, 16 s, 32 s between six tries: about a minute for a receiver to come back. */
export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  initialMs: 2000,
  factor: 2,
  capMs: 60_000,
};

/** The wait after the n-th failed try (n ≥ 1). */
export function retryDelayMs(policy: RetryPolicy, failedTries: number): number {
  return Math.min(policy.capMs, policy.initialMs * policy.factor ** Math.max(0, failedTries - 1));
}

/** How one delivery went. */
export type DeliveryOutcome =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'failed'; readonly error: string; readonly retryAfterMs?: number };

/**
 * One delivery try is known by its notification and how many tries had failed
 * before it: an outcome applies to that state of the entry only, so one
 * folded in already (or left over from a replaced leader) is never counted twice.
 */
export const tryKey = (n: Pick<PendingNotification, 'id' | 'tries'>): string =>
  `${n.id}#${n.tries}`;

export interface GivenUp {
  readonly notice: PendingNotification;
  readonly why: string;
}

export interface OutboxPass {
  /** The new status.notifications; undefined when there is nothing to keep. */
  readonly outbox: NotificationOutbox | undefined;
  readonly delivered: readonly PendingNotification[];
  /** Failed tries that will be tried again, with their new state. */
  readonly retrying: readonly PendingNotification[];
  readonly gaveUp: readonly GivenUp[];
}

interface Fold {
  readonly pending: PendingNotification[];
  readonly done: string[];
  readonly delivered: PendingNotification[];
  readonly retrying: PendingNotification[];
  readonly gaveUp: GivenUp[];
}

/** The tries since the last pass, folded into the pending entries they were made for. */
function foldOutcomes(
  previous: NotificationOutbox | undefined,
  outcomes: ReadonlyMap<string, DeliveryOutcome>,
  now: number,
  policy: RetryPolicy,
): Fold {
  const fold: Fold = {
    pending: [],
    done: [...(previous?.done ?? [])],
    delivered: [],
    retrying: [],
    gaveUp: [],
  };
  for (const p of previous?.pending ?? []) {
    const outcome = outcomes.get(tryKey(p));
    if (!outcome) {
      fold.pending.push(p);
    } else if (outcome.kind === 'delivered') {
      fold.delivered.push(p);
      fold.done.push(p.id);
    } else {
      const tries = p.tries + 1;
      const failed = { ...p, tries, lastError: outcome.error };
      if (tries >= policy.maxAttempts) {
        fold.gaveUp.push({ notice: failed, why: `after ${tries} tries: ${outcome.error}` });
        fold.done.push(p.id);
        continue;
      }
      const waitMs = Math.max(retryDelayMs(policy, tries), outcome.retryAfterMs ?? 0);
      const next = { ...failed, nextAttemptAt: new Date(now + waitMs).toISOString() };
      fold.retrying.push(next);
      fold.pending.push(next);
    }
  }
  return fold;
}

/** The outbox after this pass's outcomes and decisions. */
export function nextOutbox(
  previous: NotificationOutbox | undefined,
  decisions: readonly DecisionNotice[],
  outcomes: ReadonlyMap<string, DeliveryOutcome>,
  now: number,
  policy: RetryPolicy,
): OutboxPass {
  const { done, delivered, retrying, gaveUp, ...rest } = foldOutcomes(
    previous,
    outcomes,
    now,
    policy,
  );
  let pending = rest.pending;
  const known = new Set([...done, ...pending.map((p) => p.id)]);
  for (const d of decisions) {
    if (known.has(d.id)) continue;
    known.add(d.id);
    pending.push({ ...d, tries: 0 });
  }
  if (pending.length > MAX_PENDING) {
    const dropped = pending.slice(0, pending.length - MAX_PENDING);
    pending = pending.slice(-MAX_PENDING);
    for (const notice of dropped) {
      gaveUp.push({
        notice,
        why: `dropped undelivered: more than ${MAX_PENDING} notifications were waiting`,
      });
      done.push(notice.id);
    }
  }
  const kept = done.slice(-MAX_DONE);
  const outbox = pending.length || kept.length ? { pending, done: kept } : undefined;
  return { outbox, delivered, retrying, gaveUp };
}

/**
 * The oldest pending notification, when its try is due: one LivePatch's
 * notifications go out one at a time, in the order they were decided, so a
 * receiver that failed a while never hears "complete" before "started".
 */
export function dueNotifications(
  outbox: NotificationOutbox | undefined,
  now: number,
): PendingNotification[] {
  const [head] = outbox?.pending ?? [];
  if (!head) return [];
  return head.nextAttemptAt === undefined || Date.parse(head.nextAttemptAt) <= now ? [head] : [];
}

/**
 * How long until the oldest pending notification's next try, when it is not
 * due yet (undefined otherwise: a due one is sent in the pass, and its
 * outcome wakes the next).
 */
export function nextDueInMs(
  outbox: NotificationOutbox | undefined,
  now: number,
): number | undefined {
  const at = outbox?.pending?.[0]?.nextAttemptAt;
  if (at === undefined) return undefined;
  const wait = Date.parse(at) - now;
  return wait > 0 ? wait : undefined;
}
