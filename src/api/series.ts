// The declared order between LivePatches of one series (spec.series), read
// the same way by the agent (which member it may load on its node) and the
// controller (which nodes are done for an older member, which fall back to
// it). Both read one node's entries and their reports. Pure.
import type { DesiredPatch, ObservedPatch } from './generated/types.js';

/** Asked for on the node, and not failed or stalled there in this generation. */
function stands(entry: DesiredPatch, observed: readonly ObservedPatch[]): boolean {
  if (entry.state !== 'Enabled') return false;
  const o = observed.find((p) => p.livePatch === entry.livePatch);
  const sameEntry = o?.patchName === entry.patchName && o.observedGeneration === entry.generation;
  return !(sameEntry && (o.phase === 'Failed' || o.phase === 'Stalled'));
}

/**
 * The newest member of the entry's series that stands on the node and is
 * newer than the entry: while there is one, the entry's build must not load
 * (it would replace the newer one's).
 */
export function supersedingMember(
  entries: readonly DesiredPatch[],
  observed: readonly ObservedPatch[],
  entry: DesiredPatch,
): DesiredPatch | undefined {
  const own = entry.series;
  if (!own) return undefined;
  let newest: DesiredPatch | undefined;
  for (const e of entries) {
    const s = e.series;
    if (!s || s.name !== own.name || s.sequence <= own.sequence || !stands(e, observed)) continue;
    if (!newest?.series || s.sequence > newest.series.sequence) newest = e;
  }
  return newest;
}

/** Another Enabled entry with the same series and sequence: which is newer is not declared. */
export function sequenceRival(
  entries: readonly DesiredPatch[],
  entry: DesiredPatch,
): DesiredPatch | undefined {
  const own = entry.series;
  if (!own) return undefined;
  return entries.find(
    (e) =>
      e.livePatch !== entry.livePatch &&
      e.state === 'Enabled' &&
      e.series?.name === own.name &&
      e.series.sequence === own.sequence,
  );
}
