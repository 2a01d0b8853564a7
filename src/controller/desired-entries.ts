// The desired entry a LivePatch writes on a node, and keeping the entries
// already written in line with the spec. Pure.
import type {
  ConfigMapModuleSource,
  DesiredPatch,
  ModuleSource,
  PatchSeries,
  PatchState,
} from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import { SETTLED, type PlanContext } from './plan.js';
import type { Progress, TargetSlot } from './targets.js';

/** An entry as this generation of the spec has it; a Disabled one keeps the module it had (it never loads). */
export function specEntry(
  ctx: PlanContext,
  module: DesiredPatch['module'],
  state: PatchState,
): DesiredPatch {
  const lp = ctx.lp;
  return {
    livePatch: lp.metadata.name as DesiredPatch['livePatch'],
    patchName: lp.spec.patchName,
    state,
    module,
    generation: ctx.generation,
    stallTimeout: lp.spec.stall.timeout,
    allowForce: lp.spec.stall.allowForce,
    bakeTime: lp.spec.rollout.bakeTime,
    ...(lp.spec.series ? { series: lp.spec.series } : {}),
  };
}

/** A target's entry: the module built for its kernel, and the boot it was given for. */
export function desiredEntry(ctx: PlanContext, slot: TargetSlot, state: PatchState): DesiredPatch {
  const entry = specEntry(ctx, slot.kernel.module, state);
  return slot.node.bootID ? { ...entry, bootID: slot.node.bootID } : entry;
}

/**
 * The entry that starts a node: a series member its agent reports Replaced
 * (the newer member is gone, see targets.ts) is told to load again, which is
 * how falling back is paced like any start.
 */
export function startEntry(ctx: PlanContext, slot: TargetSlot): DesiredPatch {
  const fallback = slot.desired?.series !== undefined && slot.observed?.phase === 'Replaced';
  return { ...desiredEntry(ctx, slot, 'Enabled'), ...(fallback ? { fallback: true } : {}) };
}

/**
 * One comparison per field, optional ones included: a field added to the
 * type does not compile until its comparison is written here, so no entry
 * edited in that field can go unnoticed.
 */
type FieldComparisons<T> = { readonly [K in keyof T]-?: (a: T[K], b: T[K]) => boolean };

const equal = <V>(a: V, b: V): boolean => a === b;

function sameFields<T extends object>(fields: FieldComparisons<T>, a: T, b: T): boolean {
  for (const key in fields) if (!fields[key](a[key], b[key])) return false;
  return true;
}

const CONFIG_MAP: FieldComparisons<ConfigMapModuleSource> = {
  namespace: equal,
  name: equal,
  key: equal,
};

const MODULE: FieldComparisons<ModuleSource> = {
  url: equal,
  configMap: (a, b) =>
    a === b || (a !== undefined && b !== undefined && sameFields(CONFIG_MAP, a, b)),
  hostPath: equal,
  sha256: equal,
};

const SERIES: FieldComparisons<PatchSeries> = { name: equal, sequence: equal };

const ENTRY: FieldComparisons<DesiredPatch> = {
  livePatch: equal,
  patchName: equal,
  state: equal,
  module: (a, b) => sameFields(MODULE, a, b),
  generation: equal,
  stallTimeout: equal,
  allowForce: equal,
  bakeTime: equal,
  series: (a, b) => a === b || (a !== undefined && b !== undefined && sameFields(SERIES, a, b)),
  fallback: equal,
  bootID: equal,
};

/** Field by field: this runs for every started node on every pass, canonical JSON was most of a pass. */
export function sameEntry(a: DesiredPatch, b: DesiredPatch): boolean {
  return sameFields(ENTRY, a, b);
}

const REFRESHED: ReadonlySet<Progress> = new Set(['inFlight', 'patched', 'replaced']);

/**
 * Entries of nodes already on their way keep up with the spec (new
 * generation, stall timeout, force policy, module build), and an entry edited
 * by hand is written back: the controller owns spec. A stalled or failed
 * node's entry is restored within its generation only: a new generation
 * retries it when a slot frees, not here. A patched node's entry takes the
 * spec's module too, not the build its kernel runs: the node does not report
 * which build it loaded, and without that a kept module cannot be told from
 * one edited by hand (which would load at the next reboot).
 */
export function refreshEntries(ctx: PlanContext, writes: Map<NodeName, DesiredPatch | null>): void {
  for (const slot of ctx.targets) {
    if (!slot.desired || slot.desired.state !== 'Enabled') continue;
    const current = slot.desired.generation === ctx.generation;
    if (!REFRESHED.has(slot.progress) && !(current && SETTLED.has(slot.progress))) continue;
    // A fall-back start keeps its mark until the node has loaded the build again.
    const keep = slot.progress === 'inFlight' && slot.desired.fallback === true;
    const fresh = { ...desiredEntry(ctx, slot, 'Enabled'), ...(keep ? { fallback: true } : {}) };
    if (!sameEntry(fresh, slot.desired)) writes.set(slot.node.name, fresh);
  }
}
