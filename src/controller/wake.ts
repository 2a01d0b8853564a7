// Which LivePatches a change to one node concerns, so that a node's change
// wakes only those and not every LivePatch in the cluster. Pure.
//
// A node concerns a LivePatch that selects it (before or after a label change:
// a node leaving the selector must be let go) and one that has an entry on its
// LivePatchNode, in spec or in status (a node it patched, superseded, or must
// unpatch). A Node whose kept essentials did not change (a kubelet status
// update that touched none of them) concerns nobody.
import type { LivePatch, LivePatchNode } from '../api/generated/types.js';
import type { NodeObject, PodObject } from '../kube/resources.js';
import { matchesSelector } from './targets.js';

type Labels = Readonly<Record<string, string>>;

const NO_LABELS: Labels = {};

/** The LivePatches named by a LivePatchNode's entries, desired or observed. */
function entriesOf(lpn: LivePatchNode | undefined): string[] {
  if (!lpn) return [];
  return [
    ...(lpn.spec.patches ?? []).map((p) => p.livePatch),
    ...(lpn.status?.patches ?? []).map((p) => p.livePatch),
  ];
}

/**
 * The LivePatches one node's change concerns. `labels` are the node's labels
 * before and after the change (the same twice when only its LivePatchNode
 * changed), `lpns` its LivePatchNode before and after.
 */
export function concernedLivePatches(
  livePatches: readonly LivePatch[],
  labels: readonly (Labels | undefined)[],
  lpns: readonly (LivePatchNode | undefined)[],
): string[] {
  const named = new Set(lpns.flatMap(entriesOf));
  const known = labels.filter((l): l is Labels => l !== undefined);
  const seen = known.length ? known : [NO_LABELS];
  return livePatches
    .filter(
      (lp) =>
        named.has(lp.metadata.name ?? '') ||
        seen.some((l) => matchesSelector(lp.spec.nodeSelector, l)),
    )
    .map((lp) => lp.metadata.name ?? '');
}

/** Whether what the controller keeps of a Node changed; its resourceVersion alone is no change. */
export function nodeChanged(
  before: NodeObject | undefined,
  after: NodeObject | undefined,
): boolean {
  if (!before || !after) return before !== after;
  // nodeEssentials builds both with the same key order; undefined drops out of JSON.
  const kept = (n: NodeObject): string =>
    JSON.stringify([{ ...n.metadata, resourceVersion: undefined }, n.status]);
  return kept(before) !== kept(after);
}

/** Whether what the controller keeps of an agent Pod changed: a kubelet write that touched none of it wakes nobody. */
export function podChanged(before: PodObject | undefined, after: PodObject | undefined): boolean {
  if (!before || !after) return before !== after;
  const kept = (p: PodObject): string =>
    JSON.stringify([{ ...p.metadata, resourceVersion: undefined }, p.spec, p.status]);
  return kept(before) !== kept(after);
}
