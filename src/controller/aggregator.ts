// One fleet status from every node's own report, as a pure function: counts,
// the summary column, per-kernel progress, the stalled nodes with the tasks
// that blocked them, and conditions a person (and `kubectl wait`) can read.
import type {
  Condition,
  KernelProgress,
  LivePatch,
  LivePatchStatus,
  NodeCounts,
  Promotion,
  StalledNode,
  Superseder,
} from '../api/generated/types.js';
import { STEERING_ANNOTATIONS } from '../api/constants.js';
import type { KernelRelease, LivePatchName } from '../api/names.js';
import { clip } from '../api/listing.js';
import { byWhom, requestedBy } from '../api/steering.js';
import { describeTasks } from '../api/tasks.js';
import { kstatusDrafts, type ConditionDraft } from './kstatus-conditions.js';
import type { Plan } from './plan.js';
import type { NodeSlot, TargetSlot } from './targets.js';

const MAX_STALLED_LISTED = 20;
/** status.supersededBy's maxItems. */
const MAX_SUPERSEDERS_LISTED = 16;
/** status.kernels' maxItems: the releases with the most targeted nodes are listed. */
const MAX_KERNELS_LISTED = 256;
/** metav1.Condition's message limit. */
const CONDITION_MESSAGE_MAX = 32768;

/** How a Degraded condition opens, by reason; Halted uses the planner's own words. */
const DEGRADED_LEAD: Record<string, string> = {
  RollingBack: 'stall.action Rollback: reversing every node of the patch',
  RolledBack: 'stall.action Rollback: every node of the patch was reversed',
};

/** The condition types of LivePatch.status besides Ready, Reconciling and Stalled, and what True means. */
export const CONDITION = {
  /** Every targeted node has settled with the patch (kubectl wait --for=condition=Complete). */
  complete: 'Complete',
  /** Nodes are being patched or unpatched. */
  progressing: 'Progressing',
  /** At least one node's transition stalled (the rollout may still go on: failureBudget, Ignore). */
  nodesStalled: 'NodesStalled',
  /** The rollout was rolled back or halted, or nodes failed. */
  degraded: 'Degraded',
} as const;

export function countNodes(slots: readonly NodeSlot[]): NodeCounts {
  const targets = slots.filter((s): s is TargetSlot => s.kind === 'target');
  const by = (p: TargetSlot['progress']): number => targets.filter((t) => t.progress === p).length;
  // A node that went away while baking failed the health gate: failed, not unknown.
  const awayUnhealthy = slots.filter((s) => s.kind === 'unknown' && s.unhealthy).length;
  return {
    targeted: targets.length + slots.filter((s) => s.kind === 'unknown').length,
    patched: by('patched'),
    transitioning: by('inFlight'),
    pending: by('none'),
    stalled: by('stalled'),
    failed: by('failed') + awayUnhealthy,
    reverted: by('unpatched'),
    replaced: by('replaced'),
    // A selected node that rebooted into a release without a build keeps its entry (for unpatching) but is not targeted.
    notApplicable: slots.filter(
      (s) => s.kind === 'notApplicable' || (s.kind === 'leftover' && s.selected),
    ).length,
    unknown: slots.filter((s) => s.kind === 'unknown').length - awayUnhealthy,
  };
}

function kernels(slots: readonly NodeSlot[]): KernelProgress[] {
  const byRelease = new Map<KernelRelease, { targeted: number; patched: number }>();
  for (const s of slots) {
    if ((s.kind !== 'target' && s.kind !== 'unknown') || !s.node.kernel) continue;
    const entry = byRelease.get(s.node.kernel) ?? { targeted: 0, patched: 0 };
    entry.targeted++;
    if (s.kind === 'target' && s.progress === 'patched') entry.patched++;
    byRelease.set(s.node.kernel, entry);
  }
  const listed = [...byRelease]
    .sort(([a, x], [b, y]) => y.targeted - x.targeted || a.localeCompare(b))
    .slice(0, MAX_KERNELS_LISTED);
  return listed.sort(([a], [b]) => a.localeCompare(b)).map(([release, c]) => ({ release, ...c }));
}

export function stalledNodes(slots: readonly NodeSlot[]): StalledNode[] {
  return slots
    .filter((s): s is TargetSlot => s.kind === 'target' && s.progress === 'stalled')
    .sort((a, b) => a.node.name.localeCompare(b.node.name))
    .slice(0, MAX_STALLED_LISTED)
    .map((s) => ({
      node: s.node.name,
      ...(s.observed?.transitionStartTime ? { since: s.observed.transitionStartTime } : {}),
      blockingTasks: [...(s.observed?.blockingTasks ?? [])],
    }));
}

/** Which LivePatches took this one's place, and on how many nodes each, most first. */
export function supersededBy(slots: readonly NodeSlot[]): Superseder[] {
  const counts = new Map<LivePatchName, number>();
  for (const s of slots) {
    const by =
      s.kind === 'target' && s.progress === 'replaced' ? s.observed?.replacedBy : undefined;
    if (by) counts.set(by, (counts.get(by) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, MAX_SUPERSEDERS_LISTED)
    .map(([livePatch, nodes]) => ({ livePatch, nodes }));
}

/** "generation 3 aborted by alice (livepatch.io/abort): every node of the patch was reversed" */
function abortedMessage(lp: LivePatch, plan: Plan): string {
  const what =
    plan.phase === 'RolledBack'
      ? 'every node of the patch was reversed'
      : 'reversing every node of the patch';
  return `generation ${lp.metadata.generation ?? 1} aborted${byWhom(requestedBy(lp))} (${STEERING_ANNOTATIONS.abort}): ${what}`;
}

function advice(stalled: boolean, failed: boolean): string {
  if (stalled && failed) return 'Find what blocks the stalled tasks and fix the failed nodes';
  return failed ? 'Fix the failed nodes' : 'Find what blocks the stalled tasks';
}

const unhealthyMessage = (s: TargetSlot): string | undefined =>
  s.bake?.kind === 'unhealthy' ? s.bake.record.message : undefined;

/** "node-3: checksum mismatch: …" for the first few failed nodes. */
function failedSummary(slots: readonly NodeSlot[]): string {
  return slots
    .filter((s): s is TargetSlot => s.kind === 'target' && s.progress === 'failed')
    .slice(0, 3)
    .map((s) => `${s.node.name}: ${unhealthyMessage(s) ?? s.observed?.message ?? 'failed'}`)
    .join('; ');
}

function stalledSummary(stalled: readonly StalledNode[]): string {
  return stalled
    .slice(0, 5)
    .map(
      (s) =>
        `${s.node} (${s.blockingTasks?.length ? `blocked by ${describeTasks(s.blockingTasks)}` : 'tasks did not switch'})`,
    )
    .join(', ');
}

/** Why a Complete rollout still has stalled nodes: the failure budget allowed them, or Ignore went past them. */
function toleratedStalls(lp: LivePatch, counts: NodeCounts): string {
  if (!counts.stalled) return '';
  const failures = counts.stalled + (counts.failed ?? 0);
  const why =
    failures <= lp.spec.failureBudget
      ? 'within the failure budget'
      : 'over the failure budget; stall.action Ignore went on';
  return `, ${counts.stalled} stalled (${why})`;
}

/** Why a Complete rollout counts silent nodes as done: each last reported the patch running. */
function silentButRunning(counts: NodeCounts): string {
  if (!counts.unknown) return '';
  return `, ${counts.unknown} unreachable (each last reported the patch running)`;
}

function drafts(
  lp: LivePatch,
  plan: Plan,
  counts: NodeCounts,
  stalled: readonly StalledNode[],
  failed: string,
): ConditionDraft[] {
  const done = `${counts.patched}/${counts.targeted} nodes patched`;
  const stalledText =
    (stalled.length ? `; stalled: ${stalledSummary(stalled)}` : '') +
    (failed ? `; failed: ${failed}` : '');
  const complete: ConditionDraft =
    plan.phase === 'Complete'
      ? {
          type: CONDITION.complete,
          status: 'True',
          reason: 'RolloutComplete',
          message: `${done}${toleratedStalls(lp, counts)}${silentButRunning(counts)}`,
        }
      : { type: CONDITION.complete, status: 'False', reason: plan.reason, message: plan.message };
  const progressing = ['Progressing', 'RollingBack', 'Disabling'].includes(plan.phase);
  const degradedReason: Record<string, string> = {
    RolledBack: 'RolledBack',
    RollingBack: 'RollingBack',
    Failed: 'Halted',
  };
  const why =
    plan.phase === 'Failed' || plan.reason === 'Aborted' ? plan.reason : degradedReason[plan.phase];
  const retry = `kubectl livepatch retry ${lp.metadata.name ?? ''}`;
  const degraded: ConditionDraft = why
    ? {
        type: CONDITION.degraded,
        status: 'True',
        reason: why,
        message:
          why === 'Aborted'
            ? `${abortedMessage(lp, plan)}. To roll out again: ${retry}`
            : `${DEGRADED_LEAD[why] ?? plan.message}${stalledText}. ${advice(stalled.length > 0, failed !== '')}, then ${retry} (or edit the LivePatch)`,
      }
    : counts.failed
      ? {
          type: CONDITION.degraded,
          status: 'True',
          reason: 'NodesFailed',
          message: `${counts.failed} node(s) failed; see kubectl get livepatchnodes`,
        }
      : {
          type: CONDITION.degraded,
          status: 'False',
          reason: 'Healthy',
          message: 'no rollback, halt or failed node',
        };
  const ready = plan.phase === 'Complete' ? complete.message : plan.message;
  return [
    ...kstatusDrafts(plan, ready, { reason: degraded.reason, message: degraded.message }),
    complete,
    {
      type: CONDITION.progressing,
      status: progressing ? 'True' : 'False',
      reason: plan.reason,
      message: plan.message,
    },
    stalled.length
      ? {
          type: CONDITION.nodesStalled,
          status: 'True',
          reason: 'NodesStalled',
          message: `${counts.stalled} node(s) stalled: ${stalledSummary(stalled)}`,
        }
      : {
          type: CONDITION.nodesStalled,
          status: 'False',
          reason: 'NoStall',
          message: 'no node has stalled',
        },
    degraded,
  ];
}

/** Keeps lastTransitionTime while a condition's status holds, as metav1.Condition requires. */
function conditions(
  lp: LivePatch,
  list: readonly ConditionDraft[],
  generation: number,
  now: number,
): Condition[] {
  return list.map((c) => {
    const prev = lp.status?.conditions?.find((p) => p.type === c.type);
    const lastTransitionTime =
      prev && prev.status === c.status ? prev.lastTransitionTime : new Date(now).toISOString();
    const message = clip(c.message, CONDITION_MESSAGE_MAX);
    return { ...c, message, lastTransitionTime, observedGeneration: generation };
  });
}

/** The promotion acted on this pass, else the last one recorded. */
function promotion(lp: LivePatch, plan: Plan, time: string): { promotion?: Promotion } {
  const p = plan.promoted;
  if (!p) return lp.status?.promotion ? { promotion: lp.status.promotion } : {};
  return {
    promotion: {
      attempt: p.attempt,
      ...(p.kind === 'step' ? { step: p.step } : { full: true }),
      ...(p.by ? { requestedBy: p.by } : {}),
      time,
    },
  };
}

export function aggregateStatus(
  lp: LivePatch,
  slots: readonly NodeSlot[],
  plan: Plan,
  now: number,
): LivePatchStatus {
  const counts = countNodes(slots);
  const stalled = stalledNodes(slots);
  const superseders = supersededBy(slots);
  const generation = lp.metadata.generation ?? 1;
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    observedGeneration: generation,
    phase: plan.phase,
    summary: `${counts.patched}/${counts.targeted}`,
    nodes: counts,
    currentStep: plan.step.index,
    currentStepStartTime: iso(plan.step.startTime),
    pausedAtStepStart: plan.step.pausedAtStart,
    ...promotion(lp, plan, iso(now)),
    ...(plan.unhealthy.length ? { unhealthyNodes: [...plan.unhealthy] } : {}),
    kernels: kernels(slots),
    stalledNodes: stalled,
    ...(superseders.length ? { supersededBy: superseders } : {}),
    ...(plan.window ? { window: plan.window } : {}),
    conditions: conditions(
      lp,
      drafts(lp, plan, counts, stalled, failedSummary(slots)),
      generation,
      now,
    ),
  };
}
