// When the controller writes a LivePatch's status: at once when something a
// user or the planner waits on changed, counts alone at most once a second,
// and never from the pass that releases the finalizer of a deleted one.
import { canonicalJson } from '../api/canonical.js';
import type { LivePatchStatus } from '../api/generated/types.js';

/** Counts and messages alone are written at most this often. */
export const STATUS_INTERVAL_MS = 1000;

export type StatusWrite =
  | { readonly kind: 'none'; readonly why: string }
  | { readonly kind: 'now' }
  | { readonly kind: 'later'; readonly inMs: number };

/** What makes a status worth writing at once: what the planner reads back and what users wait for. */
function significant(status: LivePatchStatus | undefined): string {
  return canonicalJson({
    generation: status?.observedGeneration,
    phase: status?.phase,
    step: [status?.currentStep, status?.currentStepStartTime, status?.pausedAtStepStart],
    unhealthy: status?.unhealthyNodes?.map((u) => u.node),
    // Status, not reason: the Progressing reason alternates between starting nodes and waiting on them.
    conditions: status?.conditions?.map((c) => [c.type, c.status]),
    // The outbox is recorded before anything is sent: a throttled write would hold the send back.
    notifications: status?.notifications,
  });
}

export interface StatusWriteContext {
  readonly now: number;
  /** When this replica last wrote this LivePatch's status (0: never). */
  readonly lastWrittenAt: number;
  /** This pass removes the nodes' entries and the finalizer of a deleted LivePatch. */
  readonly releasingFinalizer: boolean;
}

export function statusWrite(
  current: LivePatchStatus | undefined,
  next: LivePatchStatus,
  o: StatusWriteContext,
): StatusWrite {
  if (canonicalJson(next) === canonicalJson(current)) return { kind: 'none', why: 'unchanged' };
  // The status keeps the record of the unpatching: counted again from the entries a crashed
  // leader left half removed, it would only go backwards just before the object goes.
  if (o.releasingFinalizer) return { kind: 'none', why: 'the LivePatch is going' };
  if (significant(next) !== significant(current)) return { kind: 'now' };
  const wait = o.lastWrittenAt + STATUS_INTERVAL_MS - o.now;
  return wait > 0 ? { kind: 'later', inMs: wait } : { kind: 'now' };
}
