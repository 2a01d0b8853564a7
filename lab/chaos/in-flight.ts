// Nodes in flight, from evidence the operator does not write: each simulated
// kernel's own timeline (insmod or disable until the transition ended) and,
// for the agent's time before its insmod, the moment the API server's watch
// first delivered the node's entry as Loading. Status writes are throttled
// and coalesced (a fast node may go Loading to Patched in one write), so the
// kernels' own record is what catches an over-start, even while the nodes
// started too many are still Loading. Pure.
import type { KernelEvent } from '../../agent/kernel/sim/simulator.js';
import type { KernelReading, PhaseSeen } from './evidence.js';
import type { Violation } from './invariants.js';

/** A node busy with a patch from `from` until `to` (undefined: still busy when the evidence was read). */
export interface Flight {
  readonly node: string;
  readonly patch: string;
  readonly from: number;
  readonly to?: number;
  /** How it began: the kernel's insmod or disable, or the watch's first Loading. */
  readonly began: 'insmod' | 'disable' | 'loading';
}

const at = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

/** The kernel's own flights: an insmod or a disable opens one for its patch, the transition's end closes it. */
export function kernelFlights(node: string, timeline: readonly KernelEvent[]): Flight[] {
  const open = new Map<string, { from: number; began: 'insmod' | 'disable' }>();
  const out: Flight[] = [];
  for (const e of timeline) {
    if ((e.event === 'insmod' || e.event === 'disable') && !open.has(e.patch))
      open.set(e.patch, { from: e.at, began: e.event });
    if (e.event !== 'settled') continue;
    const o = open.get(e.patch);
    if (!o) continue;
    open.delete(e.patch);
    out.push({ node, patch: e.patch, from: o.from, to: e.at, began: o.began });
  }
  for (const [patch, o] of open) out.push({ node, patch, from: o.from, began: o.began });
  return out;
}

/** Each run of Loading for one node's entry: from the watch's first Loading until it showed another phase. */
function loadingRuns(seen: readonly PhaseSeen[]): { s: PhaseSeen; until?: number }[] {
  const runs: { s: PhaseSeen; until?: number }[] = [];
  const openRun = new Map<string, { s: PhaseSeen; until?: number }>();
  for (const s of seen) {
    const key = `${s.node}/${s.patchName}`;
    const run = openRun.get(key);
    if (run && s.phase !== 'Loading') {
      run.until = s.at;
      openRun.delete(key);
    } else if (!run && s.phase === 'Loading') {
      const fresh = { s };
      runs.push(fresh);
      openRun.set(key, fresh);
    }
  }
  return runs;
}

/**
 * Every node's flights: the kernel's, each begun by an insmod taken back to
 * the Loading that led to it (a Loading that ended before the insmod, as a
 * failed load does, is not), and a Loading no insmod followed as a flight of
 * its own until the status left Loading.
 */
export function flights(kernels: readonly KernelReading[], seen: readonly PhaseSeen[]): Flight[] {
  const out = kernels.flatMap((k) => kernelFlights(k.node, k.timeline));
  for (const { s, until } of loadingRuns(seen)) {
    const i = out.findIndex(
      (f) =>
        f.node === s.node &&
        f.patch === s.patchName &&
        f.began !== 'disable' &&
        f.from <= (until ?? Infinity) &&
        (f.to === undefined || f.to >= s.at),
    );
    const f = out[i];
    if (f) {
      if (s.at < f.from) out[i] = { ...f, from: s.at };
    } else
      out.push({
        node: s.node,
        patch: s.patchName,
        from: s.at,
        ...(until !== undefined ? { to: until } : {}),
        began: 'loading',
      });
  }
  return out;
}

/** Which LivePatch each patch belongs to, from the entries the watch saw. */
export const patchOwners = (seen: readonly PhaseSeen[]): Map<string, string> =>
  new Map(seen.map((s) => [s.patchName, s.livePatch]));

/** More nodes in flight for one LivePatch than its maxUnavailable at any moment, by the kernels' flights. */
export function flightsExceeded(
  all: readonly Flight[],
  owners: ReadonlyMap<string, string>,
  limits: ReadonlyMap<string, number>,
): Violation[] {
  const out: Violation[] = [];
  for (const [livePatch, limit] of limits) {
    const mine = all.filter((f) => owners.get(f.patch) === livePatch);
    // An end and a start at the same moment do not overlap: ends first.
    const edges = mine
      .flatMap((f) => [
        { t: f.from, d: 1, f },
        ...(f.to !== undefined ? [{ t: f.to, d: -1, f }] : []),
      ])
      .sort((a, b) => a.t - b.t || a.d - b.d);
    const busy = new Set<Flight>();
    for (const e of edges) {
      if (e.d < 0) busy.delete(e.f);
      else busy.add(e.f);
      const nodes = [...new Set([...busy].map((f) => f.node))];
      if (nodes.length <= limit) continue;
      out.push({
        invariant: 'maxUnavailable never exceeded (kernels)',
        livePatch,
        seen: `at ${at(e.t)} ${nodes.length} nodes in flight by their kernels (${[...busy].map((f) => `${f.node} since ${at(f.from)} by ${f.began}`).join(', ')}), maxUnavailable ${limit}`,
      });
      break;
    }
  }
  return out;
}

export type KillPoint = 'load' | 'transition' | 'reversal' | 'unload';

/** Where a kill landed for one patch: a kill point, or 'settled' when the kernel was doing nothing with it. */
export type Landed = KillPoint | 'settled';

/**
 * Where in the patch's life the kernel was at a moment, by its timeline:
 * not yet loaded (load), enabling (transition), reversing (reversal),
 * disabling or disabled awaiting its rmmod (unload), or settled.
 */
export function landedAt(timeline: readonly KernelEvent[], patch: string, moment: number): Landed {
  let state: Landed = 'load';
  for (const e of timeline) {
    if (e.patch !== patch || e.at > moment) continue;
    if (e.event === 'insmod') state = 'transition';
    else if (e.event === 'disable') state = 'unload';
    else if (e.event === 'reverse') state = e.target === 0 ? 'reversal' : 'transition';
    else if (e.event === 'settled') state = e.enabled ? 'settled' : 'unload';
    else state = 'settled';
  }
  return state;
}
