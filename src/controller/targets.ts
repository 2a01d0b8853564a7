// Which nodes a LivePatch is for, and where each of them stands: selection by
// label selector, the kernel build for its release, whether its agent is
// there, and its progress as the node itself reports it. Pure.
import { createHash } from 'node:crypto';
import type {
  DesiredPatch,
  KernelTarget,
  LabelSelector,
  LivePatch,
  LivePatchNode,
  ObservedPatch,
  UnhealthyNode,
} from '../api/generated/types.js';
import type { KernelRelease, NodeName } from '../api/names.js';
import { supersedingMember } from '../api/series.js';
import { judgeBake, type Bake } from './bake.js';
import { agentLiveness, DEFAULT_LIVENESS_WINDOWS } from './liveness.js';
import type { NodeFacts } from './node-facts.js';

/** A node's progress on one LivePatch, from its own status. */
export type Progress =
  'none' | 'inFlight' | 'patched' | 'stalled' | 'failed' | 'replaced' | 'unpatched';

export type NodeSlot =
  | { readonly kind: 'notApplicable'; readonly node: NodeFacts }
  /** No longer selected or applicable, but still has an entry: unpatched on disable and deletion. */
  | {
      readonly kind: 'leftover';
      readonly node: NodeFacts;
      /** Still selected, but its kernel has no build (a reboot into another release): notApplicable. */
      readonly selected: boolean;
      readonly desired: DesiredPatch;
      readonly observed?: ObservedPatch;
      readonly progress: Progress;
    }
  | {
      readonly kind: 'unknown';
      readonly node: NodeFacts;
      readonly why: string;
      readonly desired?: DesiredPatch;
      /** As last reported, when it has an entry. */
      readonly progress?: Progress;
      /** It went away while baking: a failed node. */
      readonly unhealthy?: UnhealthyNode;
    }
  | {
      readonly kind: 'target';
      readonly node: NodeFacts;
      readonly kernel: KernelTarget;
      readonly desired?: DesiredPatch;
      readonly observed?: ObservedPatch;
      readonly progress: Progress;
      /** Another patch is in flight on this node: never start a second transition there. */
      readonly busyElsewhere: boolean;
      /** Patched nodes only: still baking, baked, or failed the health gate (then progress is `failed`). */
      readonly bake?: Bake;
    };

export type TargetSlot = Extract<NodeSlot, { kind: 'target' }>;

export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  return (selector.matchExpressions ?? []).every((req) => {
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        return value !== undefined && (req.values ?? []).includes(value);
      case 'NotIn':
        return value === undefined || !(req.values ?? []).includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
    }
  });
}

/** The build for a release: an exact release first, then the first pattern that matches. */
export function kernelFor(
  kernels: readonly KernelTarget[],
  release: KernelRelease | undefined,
): KernelTarget | undefined {
  if (!release) return undefined;
  const exact = kernels.find((k) => k.release === release);
  if (exact) return exact;
  return kernels.find((k) => {
    if (k.releasePattern === undefined) return false;
    try {
      return new RegExp(k.releasePattern).test(release);
    } catch {
      return false;
    }
  });
}

const IN_FLIGHT_PHASES = new Set<ObservedPatch['phase']>([
  'Pending',
  'Loading',
  'Transitioning',
  'Reversing',
  'Unpatching',
]);

/**
 * Patched or Replaced under an Enabled entry holds whatever generation the
 * agent last answered for: a new generation asks such a node for no kernel
 * work, so it must not count as in transition while its agent catches up.
 */
function settledEnabled(desired: DesiredPatch, observed: ObservedPatch | undefined): boolean {
  return (
    desired.state === 'Enabled' &&
    observed?.patchName === desired.patchName &&
    (observed.phase === 'Patched' || observed.phase === 'Replaced')
  );
}

/**
 * A node's progress as it reports it. A Stalled or Failed result of an older
 * generation is `none`: a new generation retries that node.
 */
export function progressOf(
  desired: DesiredPatch | undefined,
  observed: ObservedPatch | undefined,
  generation: number,
): Progress {
  if (!desired) return 'none';
  // A fall-back start the agent has not answered yet.
  if (desired.fallback && observed?.phase === 'Replaced') return 'inFlight';
  if (settledEnabled(desired, observed))
    return observed?.phase === 'Patched' ? 'patched' : 'replaced';
  if (
    !observed ||
    observed.observedGeneration !== desired.generation ||
    observed.patchName !== desired.patchName
  ) {
    return 'inFlight';
  }
  return answered(desired, observed, desired.generation === generation);
}

/** What the agent's report on this very entry means. */
function answered(desired: DesiredPatch, observed: ObservedPatch, current: boolean): Progress {
  switch (observed.phase) {
    case 'Patched':
      return desired.state === 'Enabled' ? 'patched' : 'inFlight';
    case 'Unpatched':
      return desired.state === 'Disabled' ? 'unpatched' : 'inFlight';
    case 'Replaced':
      return 'replaced';
    // The node guard reversing a stalled enable: stalled now, so the fleet policy acts at once
    // rather than after the reversal. Under a Disabled entry it is still on its way to Unpatched.
    case 'Reversing':
      if (desired.state === 'Disabled') return 'inFlight';
      return current ? 'stalled' : 'none';
    // An older generation's stall is `none` even under a rollback's Disabled entry: else no edit could retry it.
    case 'Stalled':
      return current ? 'stalled' : 'none';
    case 'Failed':
      return current ? 'failed' : 'none';
    default:
      return IN_FLIGHT_PHASES.has(observed.phase) ? 'inFlight' : 'none';
  }
}

/**
 * A series member its agent reports Replaced while no newer member stands on
 * the node any more (disabled, deleted, failed there): the node waits to load
 * this build again, started within maxUnavailable like any pending node.
 */
function fallbackDue(
  lpn: LivePatchNode | undefined,
  desired: DesiredPatch | undefined,
  observed: ObservedPatch | undefined,
): boolean {
  if (!lpn || !desired?.series || desired.state !== 'Enabled' || desired.fallback) return false;
  if (observed?.phase !== 'Replaced' || observed.patchName !== desired.patchName) return false;
  return !supersedingMember(lpn.spec.patches ?? [], lpn.status?.patches ?? [], desired);
}

/**
 * The Node booted again since its entry was written: the kernel came back
 * without the patch, and its agent waits for a rollout slot before loading it
 * again (DesiredPatch.bootID), so maxUnavailable holds for rebooted nodes too.
 */
function rebootedSince(desired: DesiredPatch | undefined, node: NodeFacts): boolean {
  return (
    desired?.state === 'Enabled' &&
    desired.bootID !== undefined &&
    node.bootID !== undefined &&
    desired.bootID !== node.bootID
  );
}

/**
 * Restarted after a reboot, but its agent has not reported from the new boot
 * yet: a Patched report is the earlier boot's, so the node holds its slot.
 */
function reportOfEarlierBoot(
  desired: DesiredPatch | undefined,
  node: NodeFacts,
  lpn: LivePatchNode | undefined,
): boolean {
  const reportedBoot = lpn?.status?.bootID;
  return (
    desired?.bootID !== undefined &&
    desired.bootID === node.bootID &&
    reportedBoot !== undefined &&
    reportedBoot !== node.bootID
  );
}

/**
 * Progress as it stands on the node's current boot: a rebooted node that had
 * the patch, or was on its way to it, starts again in its turn; once started,
 * a Patched report of its earlier boot holds its slot.
 */
function onThisBoot(
  reported: Progress,
  desired: DesiredPatch | undefined,
  node: NodeFacts,
  lpn: LivePatchNode | undefined,
): Progress {
  if (rebootedSince(desired, node))
    return reported === 'patched' || reported === 'inFlight' ? 'none' : reported;
  return reported === 'patched' && reportOfEarlierBoot(desired, node, lpn) ? 'inFlight' : reported;
}

function busyElsewhere(lpn: LivePatchNode, livePatch: string): boolean {
  const status = lpn.status;
  const own = lpn.spec.patches?.find((p) => p.livePatch === livePatch)?.patchName;
  if (status?.transitioning && status.transitioning !== own) return true;
  return (lpn.spec.patches ?? []).some((d) => {
    if (d.livePatch === livePatch) return false;
    const o = status?.patches?.find((p) => p.livePatch === d.livePatch);
    return progressOf(d, o, d.generation) === 'inFlight';
  });
}

/** Why the controller cannot hear a node's agent, or undefined while it is alive (liveness.ts). */
export type AgentSilence = (node: NodeName, lpn: LivePatchNode | undefined) => string | undefined;

/** Agents judged by their heartbeats alone, as if none had a Pod the controller watches. */
const byHeartbeat =
  (now: number): AgentSilence =>
  (_node, lpn) => {
    const liveness = agentLiveness({ lpn, namespace: '', now, windows: DEFAULT_LIVENESS_WINDOWS });
    return liveness.kind === 'silent' ? liveness.why : undefined;
  };

/** Every node's slot for one LivePatch, with what the controller hears of each node's agent and alerts. */
export function classifyNodes(
  lp: LivePatch,
  nodes: readonly NodeFacts[],
  lpns: ReadonlyMap<string, LivePatchNode>,
  now: number,
  heard: {
    /** The alert gate's firing alerts by the node they name, which fail a baking node. */
    readonly alerts?: ReadonlyMap<NodeName, readonly string[]>;
    /** Why a node's agent is silent (liveness.ts); by heartbeat alone when absent. */
    readonly silence?: AgentSilence;
  } = {},
): NodeSlot[] {
  const silence = heard.silence ?? byHeartbeat(now);
  return nodes.flatMap(
    (node) =>
      classifyNode(lp, node, lpns.get(node.name), now, {
        silence: silence(node.name, lpns.get(node.name)),
        alerts: heard.alerts?.get(node.name),
      }) ?? [],
  );
}

function entriesOf(
  lpn: LivePatchNode | undefined,
  livePatch: string,
): { desired: DesiredPatch | undefined; observed: ObservedPatch | undefined } {
  return {
    desired: lpn?.spec.patches?.find((p) => p.livePatch === livePatch),
    observed: lpn?.status?.patches?.find((p) => p.livePatch === livePatch),
  };
}

/** One node's slot; undefined for a node the selector does not pick. */
function classifyNode(
  lp: LivePatch,
  node: NodeFacts,
  lpn: LivePatchNode | undefined,
  now: number,
  heard: { readonly silence: string | undefined; readonly alerts: readonly string[] | undefined },
): NodeSlot | undefined {
  const { silence, alerts } = heard;
  const name = lp.metadata.name ?? '';
  const { desired, observed } = entriesOf(lpn, name);
  const progress = fallbackDue(lpn, desired, observed)
    ? 'none'
    : onThisBoot(progressOf(desired, observed, lp.metadata.generation ?? 1), desired, node, lpn);
  const selected = matchesSelector(lp.spec.nodeSelector, node.labels);
  const kernel = selected ? kernelFor(lp.spec.kernels, node.kernel) : undefined;
  if (!kernel) return untargeted(node, selected, desired, observed, progress);
  const bake =
    progress === 'patched'
      ? judgeBake({
          lp,
          node,
          lpn,
          observed,
          agentProblem: silence,
          alerts,
          now,
        })
      : undefined;
  const unhealthy = bake?.kind === 'unhealthy' ? bake.record : undefined;
  const problem = node.ready ? silence : 'the node is not Ready';
  if (problem || !lpn)
    return unknownSlot(node, problem ?? 'no agent', desired, progress, unhealthy);
  return {
    kind: 'target',
    node,
    kernel,
    desired,
    observed,
    progress: unhealthy ? 'failed' : progress,
    busyElsewhere: busyElsewhere(lpn, name),
    ...(bake ? { bake } : {}),
  };
}

/** A node without a build for its kernel: leftover if it still has an entry. */
function untargeted(
  node: NodeFacts,
  selected: boolean,
  desired: DesiredPatch | undefined,
  observed: ObservedPatch | undefined,
  progress: Progress,
): NodeSlot | undefined {
  if (desired)
    return {
      kind: 'leftover',
      node,
      selected,
      desired,
      progress,
      ...(observed ? { observed } : {}),
    };
  return selected ? { kind: 'notApplicable', node } : undefined;
}

function unknownSlot(
  node: NodeFacts,
  why: string,
  desired: DesiredPatch | undefined,
  progress: Progress,
  unhealthy: UnhealthyNode | undefined,
): NodeSlot {
  return {
    kind: 'unknown',
    node,
    why,
    ...(desired ? { desired, progress } : {}),
    ...(unhealthy ? { unhealthy } : {}),
  };
}

/**
 * The hashes, remembered: the planner orders every waiting node on every pass,
 * and at 10,000 nodes hashing them was most of a pass. A pure cache (the same
 * input always gives the same key), bounded so a churning fleet cannot grow it.
 */
const orderKeys = new Map<string, string>();
const ORDER_KEYS_MAX = 200_000;

function orderKey(input: string): string {
  let key = orderKeys.get(input);
  if (key === undefined) {
    if (orderKeys.size >= ORDER_KEYS_MAX) orderKeys.clear();
    key = createHash('sha256').update(input).digest('hex');
    orderKeys.set(input, key);
  }
  return key;
}

/**
 * Rollout order: a stable hash of LivePatch and node name. Stable, so a
 * restarted controller picks the same next nodes as the one it replaced;
 * salted with the LivePatch, so two patches do not both start on the same
 * first nodes and queue behind each other there.
 */
export function rolloutOrder(livePatch: string, nodes: readonly NodeName[]): NodeName[] {
  return stableOrder(livePatch, nodes);
}

/** Names in the order of a stable hash salted with `salt`: the rollout order, and the derived zone order. */
export function stableOrder<T extends string>(salt: string, names: readonly T[]): T[] {
  const keyed = names.map((n) => ({ n, key: orderKey(`${salt}/${n}`) }));
  return keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((k) => k.n);
}

/** The oldest other LivePatch older than `lp` that claims what `lp` claims, if any: it keeps the claim. */
function olderClaimant(
  lp: LivePatch,
  all: readonly LivePatch[],
  claims: (o: LivePatch) => boolean,
): string | undefined {
  const key = (o: LivePatch): string =>
    `${o.metadata.creationTimestamp ? new Date(o.metadata.creationTimestamp).toISOString() : ''}/${o.metadata.name ?? ''}`;
  const rivals = all.filter((o) => o.metadata.name !== lp.metadata.name && claims(o));
  const older = rivals.filter((o) => key(o) < key(lp)).sort((a, b) => key(a).localeCompare(key(b)));
  return older[0]?.metadata.name;
}

/** The oldest other LivePatch rolling out the same patchName, if any: it owns the name on the nodes. */
export function patchNameOwner(lp: LivePatch, all: readonly LivePatch[]): string | undefined {
  return olderClaimant(lp, all, (o) => o.spec.patchName === lp.spec.patchName);
}

/**
 * The oldest other LivePatch with the same spec.series name and sequence, if
 * any: which of the two builds is newer is not declared, so only it acts.
 */
export function seriesSequenceOwner(lp: LivePatch, all: readonly LivePatch[]): string | undefined {
  const own = lp.spec.series;
  if (!own) return undefined;
  return olderClaimant(
    lp,
    all,
    (o) => o.spec.series?.name === own.name && o.spec.series.sequence === own.sequence,
  );
}
