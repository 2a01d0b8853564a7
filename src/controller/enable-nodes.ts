// Rolling forward: the next nodes in rollout order start into the free slots,
// up to the current step's goal and within their zones' budgets, unless the
// rollout is paused, held at a pause step, outside its maintenance window or
// by the alert gate, complete, or stopped by its stall policy. Pure.
//
// What holds, in order: the stall policy (a rollback is never held), an
// invalid window (a spec error to fix), spec.rollout.paused, a pause step,
// then a closed window, then the alert gate, then a zone's budget or order
// (topology-budget.ts). A window or the gate only holds starts: nodes in
// flight finish and bake, and once every node has settled the rollout is
// Complete whether the window is open or not (a node that joins or reboots
// later waits for it).
import type { LivePatchPhase } from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import { listSome } from '../api/listing.js';
import { refreshEntries, startEntry } from './desired-entries.js';
import {
  countProgress,
  LISTED_NODES,
  planBase,
  SETTLED,
  type PlanBase,
  type Plan,
  type PlanContext,
  type StepState,
} from './plan.js';
import { bothClocks, untilChange, windowStatus, type WindowReading } from './maintenance-window.js';
import { initialStep, resolveStep, type StepOutcome } from './rollout-steps.js';
import { stallPolicy } from './stall-policy.js';
import { rolloutOrder, type NodeSlot, type TargetSlot } from './targets.js';
import { topologyOf, topologyStarts, type Starts } from './topology-budget.js';

type UnknownSlot = Extract<NodeSlot, { kind: 'unknown' }>;

const BUSY_RETRY_MS = 5000;

const FORWARD: ReadonlySet<LivePatchPhase> = new Set([
  'Progressing',
  'Paused',
  'Waiting',
  'Complete',
]);

/** A target not started yet (or unpatched by an earlier generation's rollback). */
const waitingToStart = (t: TargetSlot): boolean =>
  t.progress === 'none' || t.progress === 'unpatched';

/** The waiting nodes that start now: the first `room` in rollout order, within the topology's budgets if any. */
function nextNodes(ctx: PlanContext, ordered: readonly TargetSlot[], room: number): Starts {
  const topology = topologyOf(ctx.lp, ctx.slots);
  if (!topology) return { start: ordered.slice(0, room).map((t) => t.node.name) };
  return topologyStarts(topology, ordered, room);
}

/** Starts the next nodes in rollout order into the free slots, up to the step's goal. */
function startNodes(
  ctx: PlanContext,
  step: StepState,
  room: number,
  inFlight: { readonly count: number; readonly message: string },
): Plan {
  const occupied = inFlight.message;
  const b = planBase(ctx, step);
  refreshEntries(ctx, b.writes);
  const candidates = ctx.targets.filter((t) => waitingToStart(t) && !t.busyElsewhere);
  const byName = new Map(candidates.map((c) => [c.node.name, c]));
  const ordered = rolloutOrder(ctx.lp.metadata.name ?? '', [...byName.keys()]).flatMap(
    (n) => byName.get(n) ?? [],
  );
  const { start: next, held } = nextNodes(ctx, ordered, room);
  for (const name of next) {
    const slot = byName.get(name);
    if (slot) b.writes.set(name, startEntry(ctx, slot));
  }
  const holding = held ? `; the next start waits: ${held}` : '';
  if (next.length > 0)
    return {
      ...b,
      started: [...next],
      phase: 'Progressing',
      reason: 'NodesStarted',
      message: `started ${next.length} node(s); ${occupied}${holding}`,
    };
  // Held by a zone's budget or order: the nodes in flight free it, and their reports wake the controller.
  if (held && inFlight.count > 0)
    return {
      ...b,
      phase: 'Progressing',
      reason: 'NodesInFlight',
      message: `${occupied}${holding}`,
    };
  return {
    ...b,
    phase: 'Progressing',
    reason: 'WaitingForNodes',
    message: `the next nodes are busy with another patch; ${occupied}${holding}`,
    requeueAfterMs: BUSY_RETRY_MS,
  };
}

/**
 * Nodes that went silent (NotReady, agent gone) mid-transition. They have not
 * settled and keep their slot: the patch may be what took them down.
 */
function silentInFlight(ctx: PlanContext): NodeName[] {
  return ctx.slots
    .filter((s) => s.kind === 'unknown' && s.progress === 'inFlight')
    .map((s) => s.node.name);
}

/**
 * A silent node that counts as done: it last reported the patch (or the newer
 * patch that replaced it) running, or it went away while baking and is a
 * failed node, named in status.unhealthyNodes and counted against failureBudget.
 */
const silentSettled = (s: UnknownSlot): boolean =>
  s.unhealthy !== undefined || s.progress === 'patched' || s.progress === 'replaced';

/** Silent nodes not known to run the patch: they keep the LivePatch from Complete. */
function unreachable(ctx: PlanContext): UnknownSlot[] {
  return ctx.slots.filter((s): s is UnknownSlot => s.kind === 'unknown' && !silentSettled(s));
}

function inFlightMessage(inFlight: number, baking: number, silent: readonly NodeName[]): string {
  const text = `${inFlight} node(s) in transition, ${baking} baking`;
  if (!silent.length) return text;
  const who = listSome(silent, LISTED_NODES);
  return `${text}; ${who} went silent mid-transition and ${silent.length > 1 ? 'keep their slots' : 'keeps its slot'}: if the patch took ${silent.length > 1 ? 'them' : 'it'} down, disable the LivePatch`;
}

/**
 * Every reachable node has settled, but targeted nodes are silent without the
 * patch: not Complete, as a DaemonSet's rollout status waits for its NotReady
 * nodes. The message names them and says how to let a dead one go.
 */
function waitingForUnreachable(b: PlanBase, waiting: readonly UnknownSlot[]): Plan {
  const who = listSome(
    waiting.map((s) => `${s.node.name} (${s.why})`),
    LISTED_NODES,
    '; ',
  );
  return {
    ...b,
    phase: 'Progressing',
    reason: 'NodesUnreachable',
    message:
      `${waiting.length} targeted node(s) cannot be reached and do not run the patch: ${who}. ` +
      'Each is patched in turn when its agent reports again; to let a node that will not come back go, ' +
      'delete its Node object or take it out of spec.nodeSelector',
  };
}

type ClosedWindow = Extract<WindowReading, { kind: 'closed' }>;

/** "opens at 2026-01-17T00:00:00Z (Sat 2026-01-17 01:00 Europe/Berlin (UTC+01:00))" */
function opening(w: ClosedWindow): string {
  return w.nextOpen === undefined
    ? 'does not open in the next two weeks'
    : `opens at ${bothClocks(w.timeZone, w.nextOpen)}`;
}

/**
 * Nodes to start, but the window is closed: with none in flight, Waiting
 * (looked at again when it opens; the reconciler's resync bounds a long
 * wait); otherwise the nodes in flight go on, and the message says what
 * holds the next start. Undefined when no node waits to start.
 */
function closedWindow(
  ctx: PlanContext,
  b: PlanBase,
  w: ClosedWindow,
  occupied: number,
  inFlight: string,
): Plan | undefined {
  const waiting = ctx.targets.filter(waitingToStart).length;
  if (waiting === 0) return undefined;
  if (occupied > 0) {
    const message = `${inFlight}; the maintenance window is closed: the next node starts when it ${opening(w)}`;
    return { ...b, phase: 'Progressing', reason: 'NodesInFlight', message };
  }
  return {
    ...b,
    phase: 'Waiting',
    reason: 'OutsideWindow',
    message: `outside the maintenance window (${w.describe}): ${waiting} node(s) wait to start; it ${opening(w)}`,
  };
}

/** A window the controller cannot read holds every start until a person fixes it; nodes in flight go on. */
function invalidWindow(b: PlanBase, why: string, inFlight: string): Plan {
  return {
    ...b,
    phase: 'Waiting',
    reason: 'InvalidWindow',
    message: `${why}. No node starts until it is fixed; ${inFlight}`,
  };
}

export function enableNodes(ctx: PlanContext): Plan {
  const plan = forward(ctx);
  // A stall policy's rollback or halt is no longer going forward: the window says nothing there.
  if (!ctx.window || !FORWARD.has(plan.phase)) return plan;
  const window = windowStatus(ctx.window);
  const edge = untilChange(ctx.window, ctx.now);
  const requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, edge ?? Infinity);
  return {
    ...plan,
    ...(window ? { window } : {}),
    ...(Number.isFinite(requeueAfterMs) ? { requeueAfterMs } : {}),
  };
}

/** The step the rollout is at, and what rolling forward from it decides. */
function forward(ctx: PlanContext): Plan {
  const settledTargets = ctx.targets.filter((t) => SETTLED.has(t.progress)).length;
  const settledSilent = ctx.slots.filter((s) => s.kind === 'unknown' && silentSettled(s)).length;
  const silent = silentInFlight(ctx);
  const inFlight = countProgress(ctx.targets, 'inFlight') + silent.length;
  const baking = ctx.targets.filter((t) => t.bake?.kind === 'baking').length;
  const settled = settledTargets + settledSilent;
  const outcome = resolveStep(ctx, initialStep(ctx), settled, inFlight + baking);
  const plan = rollForward(ctx, outcome, { settledTargets, settled, silent, inFlight, baking });
  // The step this pass records is past the promoted pause: announced once, unless the stall policy
  // took over (a rollback or halt records no step past it).
  return outcome.promoted && FORWARD.has(plan.phase)
    ? { ...plan, promoted: outcome.promoted }
    : plan;
}

/** The window or the alert gate holds the next start; undefined when neither does. */
function heldStart(
  ctx: PlanContext,
  b: PlanBase,
  occupied: number,
  message: string,
): Plan | undefined {
  const held =
    ctx.window?.kind === 'closed' ? closedWindow(ctx, b, ctx.window, occupied, message) : undefined;
  if (held) return held;
  const gate = ctx.alertGate;
  if (gate?.kind !== 'hold' || !ctx.targets.some(waitingToStart)) return undefined;
  // Nodes in flight go on (a transition is never left half way); only the next start waits.
  if (occupied > 0)
    return {
      ...b,
      phase: 'Progressing',
      reason: 'NodesInFlight',
      message: `${message}; the alert gate holds the next start: ${gate.message}`,
    };
  return { ...b, phase: 'Waiting', reason: gate.reason, message: gate.message };
}

interface Counts {
  readonly settledTargets: number;
  readonly settled: number;
  readonly silent: readonly NodeName[];
  readonly inFlight: number;
  readonly baking: number;
}

function rollForward(ctx: PlanContext, outcome: StepOutcome, counts: Counts): Plan {
  const { settledTargets, settled, silent, inFlight, baking } = counts;
  const waiting = unreachable(ctx);
  const occupied = inFlight + baking;
  const policy = stallPolicy(ctx, outcome.step);
  if (policy) return policy;
  const b = planBase(ctx, outcome.step);
  refreshEntries(ctx, b.writes);
  const message = inFlightMessage(inFlight, baking, silent);
  if (ctx.window?.kind === 'invalid') return invalidWindow(b, ctx.window.message, message);
  if (ctx.lp.spec.rollout.paused) {
    return {
      ...b,
      phase: 'Paused',
      reason: 'Paused',
      message: 'spec.rollout.paused is true: no new node starts',
    };
  }
  if (outcome.kind === 'hold') {
    return {
      ...b,
      phase: 'Paused',
      reason: 'PauseStep',
      message: outcome.message,
      ...(outcome.requeueAfterMs ? { requeueAfterMs: outcome.requeueAfterMs } : {}),
    };
  }
  if (settledTargets >= ctx.targets.length && occupied === 0) {
    if (waiting.length) return waitingForUnreachable(b, waiting);
    return {
      ...b,
      phase: 'Complete',
      reason: 'Complete',
      message: 'every targeted node has settled',
    };
  }
  // Settled counts baking nodes too: they are started, and the step's goal counts them.
  // Silent nodes count toward the goal but cannot start: room is only for a node that can.
  const room = Math.min(ctx.maxUnavailable - occupied, outcome.goal - settled - inFlight);
  const held = heldStart(ctx, b, occupied, message);
  if (held) return held;
  if (room > 0 && ctx.targets.some(waitingToStart))
    return startNodes(ctx, outcome.step, room, { count: occupied, message });
  return { ...b, phase: 'Progressing', reason: 'NodesInFlight', message };
}
