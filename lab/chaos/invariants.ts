// The fault suite's invariants, as pure functions of the evidence (kernel
// readings and sampled statuses): each returns what it found wrong, naming
// the node or LivePatch and what was seen, so a failed run says where to look.
import type { NodeCounts } from '../../src/api/generated/types.js';
import {
  IN_FLIGHT,
  type KernelReading,
  type LivePatchSample,
  type NodeSample,
  type ObservedEntry,
  type Snapshot,
} from './evidence.js';

export interface Violation {
  readonly invariant: string;
  readonly node?: string;
  readonly livePatch?: string;
  readonly seen: string;
}

const at = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

/** A module the kernel loaded more than once since boot: a node started twice. */
export function doubleLoads(reading: KernelReading): Violation[] {
  return Object.entries(reading.loads)
    .filter(([, n]) => n > 1)
    .map(([module, n]) => ({
      invariant: 'no module loaded twice',
      node: reading.node,
      seen: `the kernel loaded ${module} ${n} times`,
    }));
}

/** How many extra loads the kernels counted, summed over nodes (0 when nothing was loaded twice). */
export const extraLoads = (readings: readonly KernelReading[]): number =>
  readings.reduce(
    (sum, r) => sum + Object.values(r.loads).reduce((s, n) => s + Math.max(0, n - 1), 0),
    0,
  );

/** A node still in transition when the run is over, in its kernel or in its status. */
export function leftInTransition(
  reading: KernelReading,
  sample: NodeSample | undefined,
): Violation[] {
  const out: Violation[] = [];
  if (reading.transition)
    out.push({
      invariant: 'no node left in transition',
      node: reading.node,
      seen: `the kernel is still ${reading.transition.target ? 'enabling' : 'disabling'} ${reading.transition.patch}`,
    });
  for (const e of sample?.patches ?? [])
    if (IN_FLIGHT.has(e.phase))
      out.push({
        invariant: 'no node left in transition',
        node: reading.node,
        livePatch: e.livePatch,
        seen: `its status still says ${e.phase} for ${e.patchName}`,
      });
  return out;
}

/** What the kernel must have for a settled phase to be true; phases in flight are judged by leftInTransition. */
const PHASE_HOLDS: Partial<
  Record<ObservedEntry['phase'], (enabled: boolean, loaded: boolean) => boolean>
> = {
  Patched: (enabled, loaded) => enabled && loaded,
  Unpatched: (_, loaded) => !loaded,
  Pending: (_, loaded) => !loaded,
  // Reversed or superseded: never enabled; the module may still await its unload.
  Stalled: (enabled) => !enabled,
  Replaced: (enabled) => !enabled,
  Failed: (enabled) => !enabled,
};

/** Why one status entry disagrees with the kernel, or undefined when it agrees. */
function entryDisagreement(e: ObservedEntry, reading: KernelReading): string | undefined {
  const dir = reading.patches.find((p) => p.name === e.patchName);
  const loaded = reading.modules.includes(e.patchName);
  const holds = PHASE_HOLDS[e.phase];
  if (!holds || holds(dir?.enabled ?? false, loaded)) return undefined;
  return `status ${e.phase} but the kernel has ${dir ? `enabled=${dir.enabled ? 1 : 0}` : 'no directory'}, module ${loaded ? 'loaded' : 'not loaded'}`;
}

/** Once settled, every status entry says what the kernel has, and every enabled patch has a Patched entry. */
export function statusAgainstKernel(
  reading: KernelReading,
  sample: NodeSample | undefined,
): Violation[] {
  const entries = sample?.patches ?? [];
  const out: Violation[] = entries.flatMap((e) => {
    const seen = entryDisagreement(e, reading);
    return seen
      ? [
          {
            invariant: 'status converges to the kernel',
            node: reading.node,
            livePatch: e.livePatch,
            seen,
          },
        ]
      : [];
  });
  for (const p of reading.patches.filter((x) => x.enabled))
    if (!entries.some((e) => e.patchName === p.name && e.phase === 'Patched'))
      out.push({
        invariant: 'status converges to the kernel',
        node: reading.node,
        seen: `the kernel has ${p.name} enabled but the status has no Patched entry for it`,
      });
  return out;
}

/** More nodes in flight for one LivePatch than its maxUnavailable, in one consistent LIST of the nodes. */
export function maxUnavailableExceeded(
  snapshots: readonly Snapshot[],
  limits: ReadonlyMap<string, number>,
): Violation[] {
  const out: Violation[] = [];
  const reported = new Set<string>();
  for (const s of snapshots) {
    for (const [livePatch, limit] of limits) {
      if (reported.has(livePatch)) continue;
      const busy = s.nodes.filter((n) =>
        n.patches.some((e) => e.livePatch === livePatch && IN_FLIGHT.has(e.phase)),
      );
      if (busy.length <= limit) continue;
      reported.add(livePatch);
      out.push({
        invariant: 'maxUnavailable never exceeded',
        livePatch,
        seen: `at ${at(s.at)} ${busy.length} nodes in flight (${busy.map((n) => n.node).join(', ')}), maxUnavailable ${limit}`,
      });
    }
  }
  return out;
}

/** Two patches in transition on one node at one moment. */
export function twoTransitions(snapshots: readonly Snapshot[]): Violation[] {
  const out: Violation[] = [];
  const reported = new Set<string>();
  for (const s of snapshots)
    for (const n of s.nodes) {
      const busy = n.patches.filter((e) => IN_FLIGHT.has(e.phase));
      if (busy.length < 2 || reported.has(n.node)) continue;
      reported.add(n.node);
      out.push({
        invariant: 'never two transitions on one node',
        node: n.node,
        seen: `at ${at(s.at)}: ${busy.map((e) => `${e.livePatch} ${e.phase}`).join(', ')}`,
      });
    }
  return out;
}

const FORWARD = new Set(['Progressing', 'Paused', 'Waiting', 'Complete']);
const BACKWARD = new Set(['RollingBack', 'RolledBack', 'Disabling', 'Disabled']);

/** The count that only grows in this phase: patched on the way forward, reverted on the way back. */
function monotoneCount(lp: LivePatchSample): { key: keyof NodeCounts; value: number } | undefined {
  const phase = lp.phase ?? '';
  if (FORWARD.has(phase)) return { key: 'patched', value: lp.counts.patched ?? 0 };
  if (BACKWARD.has(phase)) return { key: 'reverted', value: lp.counts.reverted ?? 0 };
  return undefined;
}

/**
 * A count in LivePatch.status that went backwards within one generation: on
 * the way forward patched never falls, on the way back reverted never falls
 * (a rollback, which keeps the generation, turns from one to the other),
 * except by nodes that went unknown in the same status (an agent silent past
 * the heartbeat window counts neither way until it returns).
 */
export function countsBackwards(snapshots: readonly Snapshot[]): Violation[] {
  const previous = new Map<string, { value: number; unknown: number; at: number }>();
  const out: Violation[] = [];
  const reported = new Set<string>();
  for (const s of snapshots)
    for (const lp of s.livePatches) {
      const count = monotoneCount(lp);
      if (!count || lp.observedGeneration === undefined) continue;
      const key = `${lp.name}/${lp.observedGeneration}/${count.key}`;
      const unknown = lp.counts.unknown ?? 0;
      const before = previous.get(key);
      previous.set(key, { value: count.value, unknown, at: s.at });
      if (!before || reported.has(key)) continue;
      const fell = before.value - count.value;
      if (fell <= Math.max(0, unknown - before.unknown)) continue;
      reported.add(key);
      out.push({
        invariant: 'no count goes backwards within a generation',
        livePatch: lp.name,
        seen: `generation ${lp.observedGeneration}: ${count.key} ${before.value} at ${at(before.at)}, then ${count.value} at ${at(s.at)} (${lp.phase ?? ''}, unknown ${before.unknown} then ${unknown})`,
      });
    }
  return out;
}

/** Everything a finished run must satisfy on every node, from its kernel and its last status. */
export function endOfRun(
  readings: readonly KernelReading[],
  last: readonly NodeSample[],
): Violation[] {
  return readings.flatMap((r) => {
    const sample = last.find((n) => n.node === r.node);
    return [...doubleLoads(r), ...leftInTransition(r, sample), ...statusAgainstKernel(r, sample)];
  });
}

/** Nodes still in transition at the end, by their kernel or their status. */
export const nodesLeftInTransition = (
  readings: readonly KernelReading[],
  last: readonly NodeSample[],
): number =>
  readings.filter(
    (r) =>
      leftInTransition(
        r,
        last.find((n) => n.node === r.node),
      ).length > 0,
  ).length;
