// One pass of the node agent against the kernel: reads it, carries out the
// state machine's actions one at a time (until none is left, one fails, or
// the pass has done enough), and hands each answer to the pure steps in
// pass.ts. Announcements go to the announcer; what each action is about to
// do is saved on the node first.
import type {
  Condition,
  DesiredPatch,
  LivePatchNodeStatus,
} from '../../src/api/generated/types.js';
import type { Clock } from '../../src/clock.js';
import type { Logger } from '../../src/log.js';
import { runAction } from './actions.js';
import { rebootAnnouncements } from './announcements.js';
import type { Announcer } from '../report/announcer.js';
import type { KernelCheck } from '../kernel/check.js';
import { readKernel } from './kernel-view.js';
import type { KernelBackend } from '../kernel/types.js';
import type { ModuleFetches } from '../module/module-fetches.js';
import type { NodeMemory } from '../memory/node-memory.js';
import type { KernelView, NodeAction, NodeDecision } from './node-machine.js';
import {
  afterAction,
  beginPass,
  busyExplained,
  decide,
  endPass,
  nodeStatus,
  stamped,
  type PassMemory,
  type PassTimings,
  withTaintAtLoad,
} from './pass.js';

/** A pass stops after this many actions and looks again at its next wake-up. */
const MAX_ACTIONS_PER_PASS = 6;

export interface PassDeps {
  readonly backend: KernelBackend;
  readonly kernel: KernelCheck;
  readonly fetches: ModuleFetches;
  readonly memory: NodeMemory;
  readonly announcer: Announcer;
  readonly clock: Clock;
  readonly log: Logger;
  readonly version: string;
  readonly ready: Condition;
  readonly unloadTimeoutMs: number;
  readonly timings: PassTimings;
  /** The Node's boot ID when the agent started: an entry given to another boot waits for a new slot. */
  readonly bootID?: string;
}

/** What the kernel loop did, by kind: a stall reversal is told apart from the enable or disable it is. */
export type KernelActionName =
  'fetch' | 'load' | 'enable' | 'disable' | 'reverse_stall' | 'force' | 'unload';

export interface KernelActionDone {
  readonly action: KernelActionName;
  readonly failed: boolean;
}

export function kernelActionName(action: NodeAction): KernelActionName {
  if (action.kind !== 'setEnabled') return action.kind;
  if (action.why === 'stalled') return 'reverse_stall';
  return action.enabled ? 'enable' : 'disable';
}

export interface PassResult {
  readonly memory: PassMemory;
  readonly status: LivePatchNodeStatus;
  readonly wakeInMs: number;
  /** The actions of this pass, in order. */
  readonly actions: readonly KernelActionDone[];
}

export async function runPass(
  deps: PassDeps,
  desired: readonly DesiredPatch[],
  carried: PassMemory,
): Promise<PassResult> {
  const { view, decision, memory, actions } = await act(deps, desired, carried);
  const tainted = await deps.backend.tainted();
  const end = endPass({
    desired,
    before: carried,
    memory,
    view,
    decision,
    tainted,
    now: deps.clock.now(),
    fetchRetryIn: deps.fetches.nextRetryIn(deps.clock.now()),
    timings: deps.timings,
  });
  const status = nodeStatus({
    previous: end.memory.previous,
    unmanaged: decision.unmanaged,
    view,
    tainted,
    release: await deps.backend.release(),
    ...(deps.bootID ? { bootID: deps.bootID } : {}),
    backend: deps.backend.kind,
    version: deps.version,
    ready: deps.ready,
  });
  const reboots = rebootAnnouncements(carried.previous, end.memory.previous);
  for (const r of reboots) deps.log.info(r.message, { livePatch: r.livePatch, reason: r.reason });
  deps.announcer.announce(reboots);
  return { memory: end.memory, status, wakeInMs: end.wakeInMs, actions };
}

/** `carried`: the memory as the last pass left it, whose entries the bake stamps continue. */
async function act(
  deps: PassDeps,
  desired: readonly DesiredPatch[],
  carried: PassMemory,
): Promise<{
  view: KernelView;
  decision: NodeDecision;
  memory: PassMemory;
  actions: KernelActionDone[];
}> {
  const read = (): Promise<KernelView> =>
    readKernel(deps.backend, deps.kernel.profile, desired, deps.log);
  const decideNow = (view: KernelView, memory: PassMemory): NodeDecision =>
    decide(
      desired,
      view,
      memory,
      { fetches: deps.fetches.view(desired), ...(deps.bootID ? { bootID: deps.bootID } : {}) },
      deps.clock.now(),
    );
  let view = await read();
  let memory = busyExplained(beginPass(carried, deps.clock.now()), view);
  let decision = decideNow(view, memory);
  const actions: KernelActionDone[] = [];
  for (let i = 0; decision.action && i < MAX_ACTIONS_PER_PASS; i++) {
    const action = decision.action;
    if (action.kind === 'load')
      memory = withTaintAtLoad(memory, action.livePatch, await deps.backend.tainted());
    await saveBefore(deps, desired, decision, { ...carried, taintAtLoad: memory.taintAtLoad });
    const failure = await runAction(action, {
      backend: deps.backend,
      release: deps.kernel.profile.release,
      startFetch: (entry) => {
        deps.fetches.start(entry);
      },
      unloadTimeoutMs: deps.unloadTimeoutMs,
      log: deps.log,
      ...(deps.kernel.refusal ? { refuseLoads: deps.kernel.refusal.message } : {}),
    });
    const now = deps.clock.now();
    const after = afterAction(memory, decision, {
      action,
      failure,
      now,
      failureRestMs: deps.timings.failureRestMs,
    });
    memory = after.memory;
    actions.push({ action: kernelActionName(action), failed: failure !== undefined });
    deps.announcer.announce(after.announcements);
    if (failure) break;
    view = await read();
    memory = busyExplained(memory, view);
    decision = decideNow(view, memory);
  }
  return { view, decision, memory, actions };
}

/**
 * Saves what this pass decided, bake stamps and all, before the kernel is
 * touched: an agent killed right after the action must find what it was
 * doing (a stall's reversal, say), not the pass before it.
 */
async function saveBefore(
  deps: PassDeps,
  desired: readonly DesiredPatch[],
  decision: NodeDecision,
  before: PassMemory,
): Promise<void> {
  if (!deps.memory.saves) return;
  const tainted = await deps.backend.tainted();
  const patches = stamped(decision.patches, { desired, before, tainted, now: deps.clock.now() });
  await deps.memory.save(desired, patches);
}
