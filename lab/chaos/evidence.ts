// What the fault suite judges by, taken from outside the operator: each
// simulated kernel's own state (its file, brought up to now) and the
// LivePatch and LivePatchNode objects sampled over time. Pure shapes and the
// pure readings of them; the I/O that fetches them is in sampler.ts and
// kernels.ts.
import type { KernelEvent, SimKernelState } from '../../agent/kernel/sim/simulator.js';
import type { NodeCounts, NodePatchPhase } from '../../src/api/generated/types.js';

/** A node's kernel as the kernel itself has it. */
export interface KernelReading {
  readonly node: string;
  /** Successful insmods per module since boot. */
  readonly loads: Readonly<Record<string, number>>;
  /** The patch in transition, and whether it is being enabled (1) or disabled (0). */
  readonly transition?: { readonly patch: string; readonly target: 0 | 1 };
  /** Livepatch directories in /sys/kernel/livepatch (finished ones gone). */
  readonly patches: readonly { readonly name: string; readonly enabled: boolean }[];
  /** Loaded modules (lsmod). */
  readonly modules: readonly string[];
  /** What the kernel did and when, by its own record (insmods, transitions and their ends, rmmods). */
  readonly timeline: readonly KernelEvent[];
}

export function readingOf(node: string, state: SimKernelState): KernelReading {
  const t = state.transition;
  return {
    node,
    loads: state.loads,
    ...(t ? { transition: { patch: t.patch, target: t.target } } : {}),
    patches: state.loaded
      .filter((p) => p.removeAt === undefined)
      .map((p) => ({ name: p.module.name, enabled: p.enabled })),
    modules: state.modules.map((m) => m.module.name),
    timeline: state.timeline ?? [],
  };
}

export interface ObservedEntry {
  readonly livePatch: string;
  readonly patchName: string;
  readonly phase: NodePatchPhase;
}

/** One LivePatchNode's status at one moment. */
export interface NodeSample {
  readonly node: string;
  readonly patches: readonly ObservedEntry[];
}

/** One LivePatch's status at one moment. */
export interface LivePatchSample {
  readonly name: string;
  readonly generation: number;
  readonly observedGeneration?: number;
  readonly phase?: string;
  readonly counts: NodeCounts;
}

/** One poll: the LivePatchNodes come from one LIST, so they are one consistent moment. */
export interface Snapshot {
  readonly at: number;
  readonly livePatches: readonly LivePatchSample[];
  readonly nodes: readonly NodeSample[];
}

/** A LivePatchNode entry's phase as the API server's watch delivered it, when the suite received it. */
export interface PhaseSeen {
  readonly at: number;
  readonly node: string;
  readonly livePatch: string;
  readonly patchName: string;
  readonly phase: NodePatchPhase;
}

/** Phases in which a node is busy with a patch: it holds a maxUnavailable slot and a kernel transition may run. */
export const IN_FLIGHT: ReadonlySet<NodePatchPhase> = new Set([
  'Loading',
  'Transitioning',
  'Reversing',
  'Unpatching',
]);
