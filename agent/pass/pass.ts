// One pass of the node agent, the pure part: what the state machine decides
// given what rests, what an action leaves behind, and how a pass ends (the
// entries it reports, when it looks again, the status). The kernel and the
// clock are read by pass-runner.ts, which hands their answers in here.
import type {
  Condition,
  DesiredPatch,
  LivePatchNodeStatus,
  ObservedPatch,
} from '../../src/api/generated/types.js';
import type { KernelRelease } from '../../src/api/names.js';
import type { ActionFailure } from './actions.js';
import { actionAnnouncements, type Announcement } from './announcements.js';
import {
  busyVerdict,
  expireCooldowns,
  heldBack,
  nextCooldownEnd,
  restAfterFailure,
  type BusySince,
  type Cooldowns,
} from './cooldowns.js';
import type { KernelCheck } from '../kernel/check.js';
import type { FetchState } from '../module/fetch-retry.js';
import { decideNode, type KernelView, type NodeAction, type NodeDecision } from './node-machine.js';
import { fitMessages, nextBakeEnd, nextPoll, withBake } from './reporting.js';

/** What the agent carries from one pass to the next. */
export interface PassMemory {
  /** What it last worked out per LivePatch (and reports). */
  readonly previous: readonly ObservedPatch[];
  readonly cooldowns: Cooldowns;
  /** The kernel's taint just before this agent loaded each LivePatch's module. */
  readonly taintAtLoad: ReadonlyMap<string, number>;
  /** Loads and writes waiting out an EBUSY no transition explains, since when. */
  readonly busySince: BusySince;
}

export const EMPTY_MEMORY: PassMemory = {
  previous: [],
  cooldowns: new Map(),
  taintAtLoad: new Map(),
  busySince: new Map(),
};

/**
 * A transition the kernel shows explains an EBUSY: the wait for it is no
 * refusal, and the clock of BUSY_GIVE_UP_MS starts again once it is over.
 */
export function busyExplained(memory: PassMemory, view: KernelView): PassMemory {
  if (memory.busySince.size === 0 || !view.patches.some((p) => p.transition)) return memory;
  return { ...memory, busySince: new Map() };
}

export interface PassTimings {
  /** How often the kernel is read while a transition runs. */
  readonly pollMs: number;
  readonly heartbeatMs: number;
  readonly failureRestMs: number;
}

/** The start of a pass: cooldowns that are over end, and a transient failure is forgotten. */
export function beginPass(memory: PassMemory, now: number): PassMemory {
  const { cooldowns, patches } = expireCooldowns(memory.cooldowns, memory.previous, now);
  return { ...memory, cooldowns, previous: patches };
}

/** The state machine's decision, with patches whose last action failed held back until their cooldown ends. */
export function decide(
  desired: readonly DesiredPatch[],
  view: KernelView,
  memory: PassMemory,
  agent: { readonly fetches: ReadonlyMap<string, FetchState>; readonly bootID?: string },
  now: number,
): NodeDecision {
  const decision = decideNode(desired, view, memory.previous, now, {
    ...agent,
    resting: new Set(memory.cooldowns.keys()),
  });
  return { ...decision, patches: heldBack(decision.patches, memory.cooldowns) };
}

/** The kernel's taint just before a load, for the bake's verdict on what the module did. */
export function withTaintAtLoad(
  memory: PassMemory,
  livePatch: string,
  tainted: number,
): PassMemory {
  return { ...memory, taintAtLoad: new Map([...memory.taintAtLoad, [livePatch, tainted]]) };
}

/** What an action leaves: the entries as decided, or the failure and a rest; and what to announce. */
export function afterAction(
  memory: PassMemory,
  decision: NodeDecision,
  done: {
    action: NodeAction;
    failure: ActionFailure | undefined;
    now: number;
    failureRestMs: number;
  },
): { memory: PassMemory; announcements: Announcement[] } {
  const { action } = done;
  const { busySince, failure } = busyVerdict(memory.busySince, action, done.failure, done.now);
  const announcements = actionAnnouncements(decision.patches, action, failure);
  if (!failure)
    return { memory: { ...memory, busySince, previous: decision.patches }, announcements };
  const { cooldowns, patches } = restAfterFailure(decision.patches, memory.cooldowns, {
    ...done,
    failure,
  });
  return { memory: { ...memory, busySince, cooldowns, previous: patches }, announcements };
}

/** What is saved on the node before an action: the decision, bake stamps and all. */
export function stamped(
  patches: readonly ObservedPatch[],
  i: { desired: readonly DesiredPatch[]; before: PassMemory; tainted: number; now: number },
): ObservedPatch[] {
  return withBake(patches, {
    desired: i.desired,
    previous: i.before.previous,
    taintAtLoad: i.before.taintAtLoad,
    tainted: i.tainted,
    now: i.now,
  });
}

export interface PassEnd {
  readonly desired: readonly DesiredPatch[];
  /** The memory as the last pass left it: the bake stamps continue its entries. */
  readonly before: PassMemory;
  /** The memory its actions left. */
  readonly memory: PassMemory;
  readonly view: KernelView;
  readonly decision: NodeDecision;
  readonly tainted: number;
  readonly now: number;
  /** How long until a module fetch is retried, if one waits. */
  readonly fetchRetryIn: number | undefined;
  readonly timings: PassTimings;
}

/**
 * How the pass ends: the entries it reports (with their bake), and when to
 * look again. While a transition runs, just after the kernel's next retry
 * tick; otherwise at the heartbeat, a cooldown's end, a fetch's retry or a
 * bake's end (reported at once), whichever comes first.
 */
export function endPass(i: PassEnd): { memory: PassMemory; wakeInMs: number } {
  const { desired, decision, now } = i;
  const decided = decision.action ? i.memory.previous : decision.patches;
  const previous = withBake(decided, {
    desired,
    previous: i.before.previous,
    taintAtLoad: i.memory.taintAtLoad,
    tainted: i.tainted,
    now,
  });
  const inTransition = i.view.patches.some((p) => p.transition) || decision.action !== undefined;
  const wakeInMs = inTransition
    ? nextPoll(previous, desired, i.timings.pollMs, now)
    : Math.max(
        1,
        Math.min(
          i.timings.heartbeatMs,
          nextCooldownEnd(i.memory.cooldowns, now) ?? Infinity,
          nextBakeEnd(previous, desired, now) ?? Infinity,
          i.fetchRetryIn ?? Infinity,
        ),
      );
  return { memory: { ...i.memory, previous }, wakeInMs };
}

/** The node's Ready condition, set once per agent: the kernel does not change without a restart. */
export function readyCondition(
  kernel: KernelCheck,
  agent: { version: string; backend: string; now: number },
): Condition {
  const refusal = kernel.refusal;
  return {
    type: 'Ready',
    status: refusal ? 'False' : 'True',
    reason: refusal?.reason ?? 'AgentRunning',
    message:
      refusal?.message ??
      `agent ${agent.version} drives this node's kernel through the ${agent.backend} backend`,
    lastTransitionTime: new Date(agent.now).toISOString(),
  };
}

export interface StatusInputs {
  readonly previous: readonly ObservedPatch[];
  readonly unmanaged: LivePatchNodeStatus['unmanaged'];
  readonly view: KernelView;
  readonly tainted: number;
  readonly release: KernelRelease;
  readonly bootID?: string;
  readonly backend: LivePatchNodeStatus['backend'];
  readonly version: string;
  readonly ready: Condition;
}

/** The status the pass reports, with messages cut to what the CRD takes. */
export function nodeStatus(i: StatusInputs): LivePatchNodeStatus {
  const patches = fitMessages(i.previous);
  const transitioning = i.view.patches.find((p) => p.transition)?.name;
  return {
    kernelRelease: i.release,
    ...(i.bootID ? { bootID: i.bootID } : {}),
    backend: i.backend,
    agentVersion: i.version,
    kernelTainted: i.tainted,
    patchedCount: patches.filter((p) => p.phase === 'Patched').length,
    ...(transitioning ? { transitioning } : {}),
    patches,
    unmanaged: i.unmanaged ?? [],
    conditions: [i.ready],
  };
}
