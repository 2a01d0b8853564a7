// What the agent adds to the node state machine's report, and when it looks
// and writes again: pure. The bake (when a patch became Patched, the kernel's
// taint before its load and once its bake is over), the wake-ups that make
// time-based rules land on time (the next kernel retry tick, the stall
// deadline, the end of a bake), and which status changes are worth a write
// at once (phases) and which can wait (task counts, messages).
import type {
  DesiredPatch,
  LivePatchNodeStatus,
  ObservedPatch,
} from '../../src/api/generated/types.js';
import { durationMs } from '../../src/api/quantities.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export interface BakeInputs {
  readonly desired: readonly DesiredPatch[];
  /** What this agent reported last, per LivePatch. */
  readonly previous: readonly ObservedPatch[];
  /** The kernel's taint just before this agent loaded each LivePatch's module. */
  readonly taintAtLoad: ReadonlyMap<string, number>;
  /** The kernel's taint now. */
  readonly tainted: number;
  readonly now: number;
}

function bakeMs(desired: readonly DesiredPatch[], livePatch: string): number {
  const bake = desired.find((d) => d.livePatch === livePatch)?.bakeTime;
  return bake ? durationMs(bake) : 0;
}

/**
 * Stamps each entry with its bake: patchedTime from the moment it became
 * Patched, taintBeforeLoad from the last load, and taintAfterBake once it has
 * stayed Patched for the entry's bakeTime (the controller's sign the bake is over).
 */
export function withBake(patches: readonly ObservedPatch[], i: BakeInputs): ObservedPatch[] {
  return patches.map((p) => {
    const prev = i.previous.find((o) => o.livePatch === p.livePatch && o.patchName === p.patchName);
    const before = i.taintAtLoad.get(p.livePatch) ?? prev?.taintBeforeLoad;
    const stamped = before === undefined ? p : { ...p, taintBeforeLoad: before };
    if (p.phase !== 'Patched') return stamped;
    const stayed = prev?.phase === 'Patched' && prev.patchedTime !== undefined;
    const patchedTime = stayed ? (prev.patchedTime ?? iso(i.now)) : iso(i.now);
    const kept = stayed ? prev.taintAfterBake : undefined;
    const over = i.now >= Date.parse(patchedTime) + bakeMs(i.desired, p.livePatch);
    const after = kept ?? (over ? i.tainted : undefined);
    return { ...stamped, patchedTime, ...(after !== undefined ? { taintAfterBake: after } : {}) };
  });
}

/** Slack after a kernel retry tick, so a read lands after it. */
const TICK_SLACK_MS = 20;

/**
 * When to read the kernel again while a transition runs: just after the next
 * retry tick counted from the transition's start (the kernel completes a
 * transition on its once-a-second retry), and never later than just past the
 * stall deadline, so the node guard reverses a stall on time.
 */
export function nextPoll(
  patches: readonly ObservedPatch[],
  desired: readonly DesiredPatch[],
  pollMs: number,
  now: number,
): number {
  const running = patches.find((p) => p.transition && p.transitionStartTime);
  if (!running?.transitionStartTime) return pollMs;
  const start = Date.parse(running.transitionStartTime);
  const ticks = Math.max(1, Math.ceil((now - start - TICK_SLACK_MS) / pollMs));
  let next = start + ticks * pollMs + TICK_SLACK_MS;
  if (next - now < pollMs / 4) next += pollMs;
  const stall = desired.find((d) => d.livePatch === running.livePatch)?.stallTimeout;
  const deadline = stall ? start + durationMs(stall) + 1 : Infinity;
  const wake = deadline > now ? Math.min(next, deadline) : next;
  return Math.max(1, wake - now);
}

/** How long until a Patched entry's bake is over, if one is still baking. */
export function nextBakeEnd(
  patches: readonly ObservedPatch[],
  desired: readonly DesiredPatch[],
  now: number,
): number | undefined {
  const ends = patches
    .filter((p) => p.phase === 'Patched' && p.patchedTime && p.taintAfterBake === undefined)
    .map((p) => Date.parse(p.patchedTime ?? '') + bakeMs(desired, p.livePatch) - now);
  return ends.length ? Math.max(0, Math.min(...ends)) : undefined;
}

/**
 * The part of a status that is written at once when it changes: phases, the
 * raw sysfs values, the bake stamps, the node-level facts. Task counts,
 * blocking tasks and messages alone wait for the next progress write. So does
 * a patch that is only Loading (report/status-write.ts says when that comes).
 */
export function statusKey(status: LivePatchNodeStatus): string {
  const patches = (status.patches ?? [])
    .filter((p) => p.phase !== 'Loading')
    .map((p) => ({
      ...p,
      pendingTasks: undefined,
      blockingTasks: undefined,
      message: undefined,
    }));
  return JSON.stringify({ ...status, patches });
}

/** ObservedPatch.message's maxLength in the CRD: a longer one would make the API server refuse the whole status. */
export const MESSAGE_MAX = 1024;

/** Each entry's message cut to what the CRD takes, so one long kernel or server text cannot block the node's report. */
export function fitMessages(patches: readonly ObservedPatch[]): ObservedPatch[] {
  return patches.map((p) =>
    p.message !== undefined && p.message.length > MESSAGE_MAX
      ? { ...p, message: `${p.message.slice(0, MESSAGE_MAX - 1)}…` }
      : p,
  );
}
