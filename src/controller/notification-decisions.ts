// The decisions a person wants to hear about by webhook, derived like the
// decision Events from what changed between the stored status and the new
// one: a rollout started, paused at a step, nodes stalled, a rollback began
// or ended, the rollout completed or failed. Each has a stable id, so the
// same decision derived again (by a new leader, or a node joining a Complete
// rollout) is recognised as already sent. Pure.
import type {
  LivePatch,
  LivePatchPhase,
  LivePatchStatus,
  NotificationDecision,
} from '../api/generated/types.js';
import { clip, listSome } from '../api/listing.js';
import { describeTasks } from '../api/tasks.js';
import { LISTED_NODES, type Plan } from './plan.js';

/** One decision to notify, as recorded in status.notifications.pending before it is sent. */
export interface DecisionNotice {
  readonly id: string;
  readonly decision: NotificationDecision;
  readonly message: string;
  readonly generation: number;
  readonly attempt: number;
  readonly phase: LivePatchPhase;
  readonly time: string;
}

/** status.notifications.pending[].message's maxLength. */
const MESSAGE_MAX = 1024;

/** Phases in which a rollout is already under way: nodes starting there start no new rollout. */
const UNDER_WAY = new Set<LivePatchPhase | undefined>(['Progressing', 'Paused']);

type Draft = readonly [NotificationDecision, string, string?];

/**
 * Already under way: going forward, paused, done with this generation, or held
 * part way by a window or the gate (a node already patched).
 */
function underWay(previous: LivePatchStatus | undefined, next: LivePatchStatus): boolean {
  if (!previous || UNDER_WAY.has(previous.phase)) return previous !== undefined;
  if (previous.observedGeneration !== next.observedGeneration) return false;
  if (previous.phase === 'Complete') return true;
  return previous.phase === 'Waiting' && (previous.nodes?.patched ?? 0) > 0;
}

/**
 * The rollout gets under way: a new LivePatch, a retry, a re-enable, an edit
 * after it completed, or a window that opened. A resume from a pause is not
 * one, nor a node joining a Complete rollout. Read from the phase, not from
 * the nodes this pass starts: a pass whose status write failed after it
 * started them leaves the next pass nothing to start.
 */
function started(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): Draft[] {
  if (next.phase !== 'Progressing' || underWay(previous, next)) return [];
  const first = plan.started.length ? `; first: ${listSome(plan.started, LISTED_NODES)}` : '';
  return [
    [
      'Started',
      `rollout started: ${next.nodes?.targeted ?? 0} node(s) targeted, at most ${plan.maxUnavailable} at a time${first}`,
    ],
  ];
}

/** A pause step begins to hold (spec.rollout.paused is a person's own doing: not announced). */
function paused(previous: LivePatchStatus | undefined, next: LivePatchStatus, plan: Plan): Draft[] {
  if (next.phase !== 'Paused' || plan.reason !== 'PauseStep') return [];
  if (previous?.phase === 'Paused' && previous.currentStep === next.currentStep) return [];
  return [['Paused', plan.message, `step-${(next.currentStep ?? 0) + 1}`]];
}

/** Nodes newly listed as stalled, in one notification per pass. */
function stalled(previous: LivePatchStatus | undefined, next: LivePatchStatus): Draft[] {
  const known = new Set((previous?.stalledNodes ?? []).map((s) => s.node));
  const fresh = (next.stalledNodes ?? []).filter((s) => !known.has(s.node));
  const [first] = fresh;
  if (!first) return [];
  const described = fresh.map((s) =>
    s.blockingTasks?.length
      ? `${s.node} (blocked by ${describeTasks(s.blockingTasks, 3)})`
      : `${s.node} (tasks did not switch)`,
  );
  const what =
    next.phase === 'RollingBack'
      ? 'stall.action Rollback: every node of the patch is being reversed'
      : next.phase === 'Failed'
        ? 'stall.action Halt: no new node starts'
        : 'within the failure budget, the rollout goes on';
  return [
    [
      'Stalled',
      `${fresh.length} node(s) stalled, their agents reversed the transition: ${listSome(described, LISTED_NODES, '; ')}; ${what}`,
      first.node,
    ],
  ];
}

/** The phase the pass enters, when that is a decision worth a message. */
function entered(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): Draft[] {
  if (previous?.phase === next.phase) return [];
  switch (next.phase) {
    case 'RollingBack':
      return [
        [
          'RollingBack',
          plan.reason === 'Aborted'
            ? `rolling back: ${plan.message}`
            : `rolling back: stall.action Rollback fired (${plan.message})`,
        ],
      ];
    case 'RolledBack':
      return [
        [
          'RolledBack',
          `rolled back: ${plan.message} (${next.nodes?.reverted ?? 0} reverted, ${next.nodes?.stalled ?? 0} stalled)`,
        ],
      ];
    case 'Complete':
      return [['Complete', `rollout complete: ${next.summary ?? ''} nodes patched`]];
    case 'Failed':
      return [['Failed', `failed (${plan.reason}): ${plan.message}`]];
    default:
      return [];
  }
}

/**
 * The decisions of one pass, in the order they happened. The id names the
 * LivePatch object (its uid: a LivePatch deleted and created again under the
 * same name is another), the generation, the decision, and for decisions that
 * may recur in one generation what tells them apart (the step, the first
 * newly stalled node).
 */
export function notificationDecisions(
  lp: LivePatch,
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
  now: number,
): DecisionNotice[] {
  const generation = next.observedGeneration ?? lp.metadata.generation ?? 0;
  const attempt = lp.spec.rollout.attempt ?? 0;
  const time = new Date(now).toISOString();
  const drafts = [
    ...started(previous, next, plan),
    ...paused(previous, next, plan),
    ...stalled(previous, next),
    ...entered(previous, next, plan),
  ];
  return drafts.map(([decision, message, detail]) => ({
    id: [
      lp.metadata.uid ?? lp.metadata.name ?? '',
      generation,
      decision,
      ...(detail ? [detail] : []),
    ].join('/'),
    decision,
    message: clip(message, MESSAGE_MAX),
    generation,
    attempt,
    phase: next.phase ?? plan.phase,
    time,
  }));
}
