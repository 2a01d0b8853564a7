// The Events a user wants in `kubectl describe livepatch`, derived from what
// changed between the last status and the new one. Pure.
import type { Condition, LivePatchStatus } from '../api/generated/types.js';
import { listSome } from '../api/listing.js';
import { describeTasks } from '../api/tasks.js';
import type { EventRecord } from '../kube/events.js';
import { KSTATUS_CONDITION } from './kstatus-conditions.js';
import type { Plan, Retry } from './plan.js';

const ON_PHASE: Partial<
  Record<
    LivePatchStatus['phase'] & string,
    (s: LivePatchStatus, plan: Plan) => EventRecord | undefined
  >
> = {
  // An abort announces itself (abortEvent): this one names the stall policy.
  RollingBack: (_s, plan) =>
    plan.reason === 'Aborted'
      ? undefined
      : {
          type: 'Warning',
          reason: 'RollbackStarted',
          message: `stall.action Rollback: reversing every node (${plan.message})`,
        },
  RolledBack: (s) => ({
    type: 'Normal',
    reason: 'RollbackFinished',
    message: `every node is unpatched (${s.nodes?.reverted ?? 0} reverted)`,
  }),
  Failed: (_s, plan) => ({ type: 'Warning', reason: plan.reason, message: plan.message }),
  Paused: (_s, plan) => ({ type: 'Normal', reason: 'Paused', message: plan.message }),
  Complete: (s) => ({
    type: 'Normal',
    reason: 'Completed',
    message: `rollout complete: ${s.summary ?? ''} nodes patched`,
  }),
  Disabling: () => ({ type: 'Normal', reason: 'Disabling', message: 'unpatching every node' }),
  Disabled: () => ({ type: 'Normal', reason: 'Disabled', message: 'every node is unpatched' }),
};

/** One NodeUnhealthy per node that failed its bake and was not listed before. */
function newlyUnhealthy(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
): EventRecord[] {
  const known = new Set((previous?.unhealthyNodes ?? []).map((u) => `${u.node}/${u.generation}`));
  return (next.unhealthyNodes ?? [])
    .filter((u) => !known.has(`${u.node}/${u.generation}`))
    .map((u) => ({
      type: 'Warning',
      reason: 'NodeUnhealthy',
      message: `${u.reason}: ${u.message}`,
    }));
}

/** One NodeStalled per node that was not listed as stalled before. */
function newlyStalled(previous: LivePatchStatus | undefined, next: LivePatchStatus): EventRecord[] {
  const known = new Set((previous?.stalledNodes ?? []).map((s) => s.node));
  return (next.stalledNodes ?? [])
    .filter((s) => !known.has(s.node))
    .map((s) => {
      const tasks = s.blockingTasks?.length
        ? `blocked by ${describeTasks(s.blockingTasks, 10)}`
        : 'tasks did not switch';
      return {
        type: 'Warning',
        reason: 'NodeStalled',
        message: `node ${s.node} stalled (${tasks}); its agent reversed the transition`,
      };
    });
}

/**
 * One Aborted Event per abort: the first status that records it (the Degraded
 * condition, reason Aborted) is the one written with it, so a controller that
 * takes over mid-abort does not announce it again, nor does a pause or an
 * edit (a new generation) while it holds.
 */
function abortEvent(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): EventRecord[] {
  if (plan.reason !== 'Aborted') return [];
  const recorded = previous?.conditions?.some(
    (c) => c.type === 'Degraded' && c.reason === 'Aborted',
  );
  if (recorded) return [];
  const message = `generation ${next.observedGeneration ?? ''} ${plan.message}`;
  return [{ type: 'Warning', reason: 'Aborted', message }];
}

/** "generation 4 is a fresh rollout after RolledBack (attempt 2, requested by alice)" */
function retryEvent(next: LivePatchStatus, retry: Retry): EventRecord {
  const details = [
    ...(retry.attempt !== undefined ? [`attempt ${retry.attempt}`] : []),
    ...(retry.by ? [`requested by ${retry.by}`] : []),
  ];
  return {
    type: 'Normal',
    reason: 'RetryStarted',
    message: `generation ${next.observedGeneration ?? ''} is a fresh rollout after ${retry.after}${details.length ? ` (${details.join(', ')})` : ''}`,
  };
}

/**
 * One Promoted per promotion: the planner reports it on the pass that moves the
 * step past the promoted pause (or to the end), and the status written with it
 * records the step, so the next pass, or a controller that takes over, does not.
 */
function promotedEvent(plan: Plan): EventRecord[] {
  const p = plan.promoted;
  if (!p) return [];
  const who = p.by ? ` by ${p.by}` : '';
  const message =
    p.kind === 'full'
      ? `attempt ${p.attempt} promoted in full${who}: every remaining step skipped, the rollout goes on to every targeted node, at most ${plan.maxUnavailable} at a time`
      : `pause step ${p.step} of attempt ${p.attempt} promoted${who}: it holds the rollout no longer; the next steps apply as written`;
  return [{ type: 'Normal', reason: 'Promoted', message }];
}

/**
 * One NodesUnreachable when the rollout comes to wait for silent nodes alone
 * (the Complete condition's reason turns to it), not on every pass it waits.
 */
function unreachableEvent(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): EventRecord[] {
  if (plan.reason !== 'NodesUnreachable') return [];
  const complete = (s: LivePatchStatus | undefined): Condition | undefined =>
    s?.conditions?.find((c) => c.type === 'Complete');
  if (complete(previous)?.reason === 'NodesUnreachable') return [];
  return [
    {
      type: 'Warning',
      reason: 'NodesUnreachable',
      message: complete(next)?.message ?? plan.message,
    },
  ];
}

/**
 * One Event when the rollout comes to wait, and when what holds it changes
 * (the window closed, then the alert gate held, or the window's time zone was
 * edited into one the controller does not know): what holds it and until when. Decided from the stored
 * status, so a new leader does not repeat it. A window the controller cannot
 * read is for a person to fix: a Warning.
 */
function waitingEvent(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): EventRecord[] {
  if (next.phase !== 'Waiting') return [];
  const held = previous?.conditions?.find((c) => c.type === KSTATUS_CONDITION.reconciling)?.reason;
  if (previous?.phase === 'Waiting' && held === plan.reason) return [];
  const type = plan.reason === 'InvalidWindow' ? 'Warning' : 'Normal';
  return [{ type, reason: plan.reason, message: plan.message }];
}

/** Whether this pass begins a step; leaving Waiting (a window opened, the gate cleared) goes on with the same one. */
function beginsStep(previous: LivePatchStatus | undefined, next: LivePatchStatus): boolean {
  return (
    (previous?.phase !== 'Progressing' && previous?.phase !== 'Waiting') ||
    previous.currentStep !== next.currentStep ||
    previous.observedGeneration !== next.observedGeneration
  );
}

export function decisionEvents(
  previous: LivePatchStatus | undefined,
  next: LivePatchStatus,
  plan: Plan,
): EventRecord[] {
  const events: EventRecord[] = plan.retry ? [retryEvent(next, plan.retry)] : [];
  events.push(...promotedEvent(plan));
  // One Event per step, not per node: nodes start one by one as slots free.
  const stepBegins = beginsStep(previous, next);
  if (plan.started.length && next.phase === 'Progressing' && stepBegins) {
    events.push({
      type: 'Normal',
      reason: 'StepStarted',
      message: `step ${(next.currentStep ?? 0) + 1}: patching nodes, at most ${plan.maxUnavailable} at a time; first: ${listSome(plan.started, 10)}`,
    });
  }
  events.push(
    ...abortEvent(previous, next, plan),
    ...unreachableEvent(previous, next, plan),
    ...waitingEvent(previous, next, plan),
    ...newlyStalled(previous, next),
    ...newlyUnhealthy(previous, next),
  );
  if (previous?.phase !== next.phase && next.phase) {
    const event = ON_PHASE[next.phase]?.(next, plan);
    if (event) events.push(event);
  }
  return events;
}
