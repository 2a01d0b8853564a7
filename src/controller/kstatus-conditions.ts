// Ready, Reconciling and Stalled: the conditions GitOps tools read. kstatus
// (Flux, kpt, cli-utils) reads a resource as InProgress while Reconciling is
// True, Failed while Stalled is True and Current otherwise; our Argo CD health
// check reads the same three. So Reconciling holds for as long as the rollout
// moves by itself (or waits for a resume), and Stalled only once it cannot go
// on without a person. Pure: a phase in, three drafts out.
import type { Condition, LivePatchPhase } from '../api/generated/types.js';

export interface ConditionDraft {
  readonly type: string;
  readonly status: Condition['status'];
  readonly reason: string;
  readonly message: string;
}

export const KSTATUS_CONDITION = {
  /** The rollout reached what the spec asks: every targeted node patched, or every node unpatched. */
  ready: 'Ready',
  /** The rollout is under way, or paused on its way: not finished, not stuck. */
  reconciling: 'Reconciling',
  /** The rollout ended without reaching the spec and waits for a person: RolledBack or Failed. */
  stalled: 'Stalled',
} as const;

/** Where each phase stands for a GitOps tool. */
type Standing = 'working' | 'ready' | 'stuck';

const STANDING: Record<LivePatchPhase, Standing> = {
  Pending: 'working',
  Progressing: 'working',
  // Paused waits for a person's resume, but nothing is wrong: still on its way, not Stalled.
  Paused: 'working',
  // Waiting for a window or the alert gate: the rollout goes on by itself when it opens.
  Waiting: 'working',
  RollingBack: 'working',
  Disabling: 'working',
  Complete: 'ready',
  Disabled: 'ready',
  RolledBack: 'stuck',
  Failed: 'stuck',
};

/** What the planner decided, in the words the three conditions take from it. */
export interface Decision {
  readonly phase: LivePatchPhase;
  readonly reason: string;
  readonly message: string;
}

/**
 * Ready, Reconciling and Stalled for one decision. `done` words Ready when the
 * rollout finished (the Complete message); `stuck` words Stalled when it ended
 * without reaching the spec (the Degraded reason and message, which say what to do).
 */
export function kstatusDrafts(
  d: Decision,
  done: string,
  stuck: { readonly reason: string; readonly message: string },
): ConditionDraft[] {
  const standing = STANDING[d.phase];
  const ready: ConditionDraft =
    standing === 'ready'
      ? {
          type: KSTATUS_CONDITION.ready,
          status: 'True',
          reason: d.phase === 'Complete' ? 'RolloutComplete' : d.reason,
          message: done,
        }
      : { type: KSTATUS_CONDITION.ready, status: 'False', reason: d.reason, message: d.message };
  const reconciling: ConditionDraft = {
    type: KSTATUS_CONDITION.reconciling,
    status: standing === 'working' ? 'True' : 'False',
    reason: d.reason,
    message: d.message,
  };
  const stalled: ConditionDraft =
    standing === 'stuck'
      ? { type: KSTATUS_CONDITION.stalled, status: 'True', ...stuck }
      : {
          type: KSTATUS_CONDITION.stalled,
          status: 'False',
          reason: 'NotStalled',
          message: 'the rollout needs no one to go on',
        };
  return [ready, reconciling, stalled];
}
