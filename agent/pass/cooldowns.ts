// A patch whose last action failed rests before the next one, so that a busy
// kernel or a refused module is not hammered once a second: pure, the clock
// passed in.
import type { ObservedPatch } from '../../src/api/generated/types.js';
import type { ActionFailure } from './actions.js';
import type { NodeAction } from './node-machine.js';

/** How long a patch rests after a failure a later try may fix (a busy kernel, a failed unload). */
export const FAILURE_REST_MS = 10_000;
/** How long it rests after a refusal: only a new generation of the LivePatch is likely to differ. */
export const REFUSAL_REST_MS = 60_000;
/**
 * How long a load or a write of `enabled` waits out EBUSY while the kernel
 * shows no transition that explains it: a transition of someone else's that
 * began and ended between two reads is over well within it; ftrace refusing
 * the handler (kernel.ftrace_enabled=0, another tool on the function) is not.
 */
export const BUSY_GIVE_UP_MS = 120_000;
/** Never wake for a cooldown's end sooner than this: its end is not worth a busy loop. */
const MIN_WAKE_MS = 100;

/** No new action on a patch before `until`; `entry` is what it reports meanwhile. */
export interface Cooldown {
  readonly until: number;
  readonly retryable: boolean;
  readonly entry: ObservedPatch;
}

/** By LivePatch. */
export type Cooldowns = ReadonlyMap<string, Cooldown>;

/**
 * Ends the cooldowns that are over. A transient failure is forgotten, so the
 * next pass tries afresh; a refusal stays Failed for its generation.
 */
export function expireCooldowns(
  cooldowns: Cooldowns,
  patches: readonly ObservedPatch[],
  now: number,
): { cooldowns: Cooldowns; patches: readonly ObservedPatch[] } {
  const over = [...cooldowns].filter(([, c]) => c.until <= now);
  const forget = new Set(over.filter(([, c]) => c.retryable).map(([livePatch]) => livePatch));
  return {
    cooldowns: new Map([...cooldowns].filter(([, c]) => c.until > now)),
    patches: patches.filter((p) => !forget.has(p.livePatch) || p.phase !== 'Failed'),
  };
}

/**
 * Records a failed action. An unload that fails keeps the entry's phase (a
 * Stalled node stays Stalled and is never loaded again), and so does a busy
 * kernel (the node stays in flight, Loading or Unpatching, and is no failure
 * of the rollout); anything else is Failed. Either way the patch rests:
 * `failureRestMs` after a failure a later try may fix, REFUSAL_REST_MS after
 * a refusal.
 */
export function restAfterFailure(
  patches: readonly ObservedPatch[],
  cooldowns: Cooldowns,
  failed: { action: NodeAction; failure: ActionFailure; now: number; failureRestMs: number },
): { cooldowns: Cooldowns; patches: readonly ObservedPatch[] } {
  const { action, failure } = failed;
  const decided = patches.find((p) => p.livePatch === action.livePatch);
  if (!decided) return { cooldowns, patches };
  const entry: ObservedPatch =
    action.kind === 'unload'
      ? { ...decided, message: `${decided.message ?? ''}; unloading failed: ${failure.message}` }
      : failure.busy
        ? { ...decided, message: failure.message }
        : { ...decided, phase: 'Failed', message: failure.message };
  const retryable = failure.retryable || action.kind === 'unload';
  const until = failed.now + (retryable ? failed.failureRestMs : REFUSAL_REST_MS);
  return {
    cooldowns: new Map([...cooldowns, [action.livePatch, { until, retryable, entry }]]),
    patches: patches.map((p) => (p.livePatch === action.livePatch ? entry : p)),
  };
}

/** What each resting patch reports: its failure, not what the state machine would make of it. */
export function heldBack(patches: readonly ObservedPatch[], cooldowns: Cooldowns): ObservedPatch[] {
  return patches.map((p) => cooldowns.get(p.livePatch)?.entry ?? p);
}

/** How long until the first cooldown ends, if any runs. */
export function nextCooldownEnd(cooldowns: Cooldowns, now: number): number | undefined {
  const ends = [...cooldowns.values()].map((c) => Math.max(MIN_WAKE_MS, c.until - now));
  return ends.length ? Math.min(...ends) : undefined;
}

/** When each LivePatch's load or write first met an EBUSY the kernel's view does not explain, by LivePatch. */
export type BusySince = ReadonlyMap<string, number>;

/**
 * Keeps the start of an unexplained EBUSY wait, and turns one that lasted
 * BUSY_GIVE_UP_MS into a refusal with the kernel's words and what to do.
 * Any other outcome of an action ends the wait.
 */
export function busyVerdict(
  busySince: BusySince,
  action: NodeAction,
  failure: ActionFailure | undefined,
  now: number,
): { busySince: BusySince; failure: ActionFailure | undefined } {
  const rest = new Map([...busySince].filter(([lp]) => lp !== action.livePatch));
  if (!failure?.busy) return { busySince: rest, failure };
  const since = busySince.get(action.livePatch) ?? now;
  if (now - since < BUSY_GIVE_UP_MS)
    return { busySince: new Map([...rest, [action.livePatch, since]]), failure };
  const message =
    `${failure.busy.answer} for ${Math.round((now - since) / 1000)}s while no other livepatch was in transition, ` +
    "so the agent stopped trying: ftrace refuses the patch's handler. Check that sysctl kernel.ftrace_enabled is 1 " +
    'and that no other tool (a kprobe, a BPF trampoline, another patching tool) modifies the patched functions, ' +
    'then change the LivePatch to try again';
  return {
    busySince: rest,
    failure: { reason: 'KernelBusy', retryable: false, message },
  };
}
