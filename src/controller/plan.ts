// What one planning pass decides (Plan), and what every part of the planner
// reads to decide it (PlanContext): the shared vocabulary of planner.ts,
// enable-nodes.ts, unpatch-nodes.ts and the modules they use.
import type {
  DesiredPatch,
  LivePatch,
  LivePatchPhase,
  UnhealthyNode,
  WindowStatus,
} from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import type { WindowReading } from './maintenance-window.js';
import type { NodeSlot, Progress, TargetSlot } from './targets.js';

export interface StepState {
  readonly index: number;
  readonly startTime: number;
  readonly pausedAtStart: boolean;
}

export interface Plan {
  readonly phase: LivePatchPhase;
  /** Why the rollout is where it is, for the Progressing condition. */
  readonly reason: string;
  readonly message: string;
  /** New desired entries for this LivePatch, per node; null removes the entry. */
  readonly writes: ReadonlyMap<NodeName, DesiredPatch | null>;
  /** Nodes this pass starts (into free slots, or a batch of unpatching). */
  readonly started: readonly NodeName[];
  readonly step: StepState;
  /** Every node that failed the health gate this generation, kept in status. */
  readonly unhealthy: readonly UnhealthyNode[];
  /** spec.rollout.maxUnavailable resolved against the targeted nodes. */
  readonly maxUnavailable: number;
  readonly requeueAfterMs?: number;
  /** Deletion may proceed: every node has unpatched or its agent is gone. */
  readonly releaseFinalizer: boolean;
  /** This pass starts a new generation after RolledBack or Failed: a fresh attempt, announced by an Event. */
  readonly retry?: Retry;
  /** spec.rollout.window as read this pass, while rolling forward: status.window. */
  readonly window?: WindowStatus;

  /** This pass ended a pause step, or skipped every remaining step, as livepatch.io/promote asked. */
  readonly promoted?: Promoted;
}

/** A promotion acted on: one pause step (1-based, as messages number them) or every remaining step. */
export type Promoted =
  | { readonly kind: 'step'; readonly attempt: number; readonly step: number; readonly by?: string }
  | { readonly kind: 'full'; readonly attempt: number; readonly by?: string };

export interface Retry {
  readonly after: 'RolledBack' | 'Failed';
  readonly attempt?: number;
  readonly by?: string;
}

/** One pass's inputs, and what follows from them for every rule alike. */
export interface PlanContext {
  readonly lp: LivePatch;
  readonly slots: readonly NodeSlot[];
  readonly targets: readonly TargetSlot[];
  /**
   * Targets plus the nodes the LivePatch is for whose Node is not Ready or
   * whose agent is silent: they stay targeted, like a DaemonSet's nodes, so
   * maxUnavailable and step percentages count them and Complete waits for them.
   */
  readonly targeted: number;
  readonly now: number;
  readonly generation: number;
  readonly sameGeneration: boolean;
  readonly maxUnavailable: number;
  readonly unhealthy: readonly UnhealthyNode[];
  /** spec.rollout.window read at `now`; undefined without a window. */
  readonly window: WindowReading | undefined;
}

/** The parts of a Plan every outcome shares, before its phase and message. */
export interface PlanBase {
  writes: Map<NodeName, DesiredPatch | null>;
  started: NodeName[];
  step: StepState;
  unhealthy: readonly UnhealthyNode[];
  maxUnavailable: number;
  releaseFinalizer: boolean;
}

export function planBase(ctx: PlanContext, step: StepState): PlanBase {
  return {
    writes: new Map(),
    started: [],
    step,
    unhealthy: ctx.unhealthy,
    maxUnavailable: ctx.maxUnavailable,
    releaseFinalizer: false,
  };
}

/** Nodes whose transition is over, whatever its outcome: they hold no slot (baking aside). */
export const SETTLED: ReadonlySet<Progress> = new Set(['patched', 'stalled', 'failed', 'replaced']);

/** Nodes named in one message; the rest are counted (a message must stay short at any fleet size). */
export const LISTED_NODES = 5;

export const countProgress = (targets: readonly TargetSlot[], ...progress: Progress[]): number =>
  targets.filter((t) => progress.includes(t.progress)).length;
