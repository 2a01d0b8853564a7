// Topology budgets (spec.rollout.topology): the targeted nodes grouped by the
// value of one node label (zones, by default), a maxUnavailable per group
// beside the global one, and under ZoneByZone one group after another. Pure:
// where each node stands → which waiting nodes may start now, and each
// group's progress for status.topology.
//
// A group has finished when none of its nodes is waiting, blocked or in
// flight (baking included): stalled and failed nodes have settled, as the
// stall policy already allowed them (over failureBudget it fires before any
// start is chosen), and a node that cannot be reached and never started
// holds nothing. A group that has started goes on whatever the order, so a
// node that joins a finished zone is patched in its turn without holding up
// the zones behind it, and the next group opens only once every group ahead
// of it has finished.
import type {
  LivePatch,
  TopologySpec,
  TopologyStatus,
  ZoneProgress,
} from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import { scaleIntOrPercent } from '../api/quantities.js';
import type { NodeFacts } from './node-facts.js';
import { stableOrder, type NodeSlot, type TargetSlot } from './targets.js';

/** Where a node stands, as far as its group is concerned. */
type Stage =
  /** Not started, and free to start now. */
  | 'waiting'
  /** Not started, busy with another patch: it keeps its group from finishing but cannot start yet. */
  | 'blocked'
  /** Loading, in transition, baking, or silent mid-transition: it takes one of its group's slots. */
  | 'occupied'
  /** Done, whatever the outcome. */
  | 'settled'
  /** Unreachable and not started: counted, but holds nothing. */
  | 'away';

interface Member {
  readonly node: NodeName;
  /** The label's value; "" for a node without it. */
  readonly zone: string;
  readonly stage: Stage;
  /** Runs the patch (baking included): the group's progress counts it. */
  readonly patched: boolean;
  /** A newer member of the series took its place: settled, but this rollout never started it. */
  readonly replaced: boolean;
}

export interface Group {
  readonly zone: string;
  readonly targeted: number;
  readonly patched: number;
  readonly occupied: number;
  /** Nodes that keep the group from finishing: waiting, blocked or in flight. */
  readonly unsettled: number;
  /** A node of it has started or settled: the group goes on whatever the order. */
  readonly started: boolean;
}

export interface Starts {
  readonly start: readonly NodeName[];
  /** What kept a waiting node from starting while there was room, for the Progressing message. */
  readonly held?: string;
}

/** status.topology.zones' maxItems. */
const MAX_ZONES_LISTED = 64;

/** A node's group: the value of the label, "" without it (an empty value is no zone either). */
const zoneOf = (node: NodeFacts, key: string): string => node.labels[key] ?? '';

/** How a group is named to people: its value, or what the nodes without the label lack. */
export const zoneName = (zone: string, key: string): string => zone || `(no ${key} label)`;

function targetStage(t: TargetSlot): Stage {
  switch (t.progress) {
    case 'none':
    case 'unpatched':
      return t.busyElsewhere ? 'blocked' : 'waiting';
    case 'inFlight':
      return 'occupied';
    case 'patched':
      return t.bake?.kind === 'baking' ? 'occupied' : 'settled';
    case 'stalled':
    case 'failed':
    case 'replaced':
      return 'settled';
  }
}

/** Every targeted node with its group and stage; silent nodes too, as maxUnavailable counts them. */
function membersOf(slots: readonly NodeSlot[], key: string): Member[] {
  return slots.flatMap((s): Member[] => {
    if (s.kind === 'target') {
      const member = { node: s.node.name, zone: zoneOf(s.node, key) };
      return [
        {
          ...member,
          stage: targetStage(s),
          patched: s.progress === 'patched',
          replaced: s.progress === 'replaced',
        },
      ];
    }
    if (s.kind !== 'unknown') return [];
    const ran = s.progress === 'patched' || s.progress === 'replaced';
    const stage: Stage =
      s.progress === 'inFlight' ? 'occupied' : s.unhealthy || ran ? 'settled' : 'away';
    return [
      {
        node: s.node.name,
        zone: zoneOf(s.node, key),
        stage,
        patched: !s.unhealthy && s.progress === 'patched',
        replaced: s.progress === 'replaced',
      },
    ];
  });
}

function groupsOf(members: readonly Member[]): Map<string, Group> {
  const groups = new Map<string, { -readonly [K in keyof Group]: Group[K] }>();
  for (const m of members) {
    let g = groups.get(m.zone);
    if (!g) {
      g = { zone: m.zone, targeted: 0, patched: 0, occupied: 0, unsettled: 0, started: false };
      groups.set(m.zone, g);
    }
    g.targeted++;
    if (m.patched) g.patched++;
    if (m.stage === 'occupied') g.occupied++;
    if (m.stage === 'waiting' || m.stage === 'blocked' || m.stage === 'occupied') g.unsettled++;
    // A node a newer series member replaced was never started here: it does not open its group.
    if (m.stage === 'occupied' || (m.stage === 'settled' && !m.replaced)) g.started = true;
  }
  return groups;
}

/**
 * The order ZoneByZone takes the groups in: those `stated` (spec.rollout.topology.zones),
 * then the rest in a stable hash order salted with the LivePatch (as nodes are ordered),
 * the nodes without the label last unless "" is stated.
 */
export function zoneOrder(
  livePatch: string,
  zones: Iterable<string>,
  stated: readonly string[] = [],
): string[] {
  const present = new Set(zones);
  const listed = stated.filter((z) => present.has(z));
  const rest = [...present].filter((z) => z !== '' && !listed.includes(z));
  const unlabeled = present.has('') && !listed.includes('') ? [''] : [];
  return [...listed, ...stableOrder(`${livePatch}/zones`, rest), ...unlabeled];
}

/** Under ZoneByZone, the first unfinished group ahead of each group that may not start; undefined for those that may. */
function closedBy(
  groups: ReadonlyMap<string, Group>,
  order: readonly string[],
): Map<string, string> {
  const closed = new Map<string, string>();
  let blocker: string | undefined;
  for (const zone of order) {
    const g = groups.get(zone);
    if (!g) continue;
    if (blocker !== undefined && !g.started) closed.set(zone, blocker);
    if (g.unsettled > 0) blocker ??= zone;
  }
  return closed;
}

/**
 * Which of the waiting nodes (given in rollout order) start now, at most `room`
 * of them (what the global maxUnavailable and the current step leave), each
 * within its group's budget and, under ZoneByZone, only in a group that may go.
 */
function chooseStarts(
  waiting: readonly Member[],
  groups: ReadonlyMap<string, Group>,
  spec: TopologySpec,
  order: readonly string[],
  room: number,
): Starts {
  const byZone = spec.order === 'ZoneByZone';
  const closed = byZone ? closedBy(groups, order) : new Map<string, string>();
  const free = new Map<string, number>();
  for (const g of groups.values()) {
    const cap =
      spec.maxUnavailable === undefined
        ? Infinity
        : scaleIntOrPercent(spec.maxUnavailable, g.targeted);
    free.set(g.zone, cap - g.occupied);
  }
  const rank = new Map(order.map((z, i) => [z, i]));
  const candidates = byZone
    ? [...waiting].sort((a, b) => (rank.get(a.zone) ?? 0) - (rank.get(b.zone) ?? 0))
    : waiting;
  const start: NodeName[] = [];
  let held: string | undefined;
  const name = (zone: string): string => `zone ${zoneName(zone, spec.key)}`;
  for (const m of candidates) {
    if (start.length >= room) break;
    const blocker = closed.get(m.zone);
    if (blocker !== undefined) {
      held ??= `${name(m.zone)} waits for ${name(blocker)} to finish (ZoneByZone)`;
      continue;
    }
    const left = free.get(m.zone) ?? 0;
    if (left <= 0) {
      const inFlight = groups.get(m.zone)?.occupied ?? 0;
      held ??= `${name(m.zone)} is at its budget: ${inFlight} node(s) in flight (spec.rollout.topology.maxUnavailable ${String(spec.maxUnavailable)})`;
      continue;
    }
    free.set(m.zone, left - 1);
    start.push(m.node);
  }
  return held === undefined ? { start } : { start, held };
}

/** The groups worth listing when there are too many: in flight first, then unfinished, then the rest. */
function listed(groups: readonly Group[]): Group[] {
  if (groups.length <= MAX_ZONES_LISTED) return [...groups];
  const weight = (g: Group): number => (g.occupied > 0 ? 0 : g.unsettled > 0 ? 1 : 2);
  const position = new Map(groups.map((g, i) => [g, i]));
  const kept = new Set(
    [...groups].sort((a, b) => weight(a) - weight(b)).slice(0, MAX_ZONES_LISTED),
  );
  return groups
    .filter((g) => kept.has(g))
    .sort((a, b) => (position.get(a) ?? 0) - (position.get(b) ?? 0));
}

/** A LivePatch's topology this pass: its spec, the groups the targeted nodes form, and their order. */
export interface Topology {
  readonly spec: TopologySpec;
  readonly groups: ReadonlyMap<string, Group>;
  readonly order: readonly string[];
}

export function topologyOf(lp: LivePatch, slots: readonly NodeSlot[]): Topology | undefined {
  const spec = lp.spec.rollout.topology;
  if (!spec) return undefined;
  const groups = groupsOf(membersOf(slots, spec.key));
  const order =
    spec.order === 'ZoneByZone'
      ? zoneOrder(lp.metadata.name ?? '', groups.keys(), spec.zones)
      : [...groups.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
  return { spec, groups, order };
}

/** The nodes to start among `ordered` (waiting, in rollout order), within the topology's budgets. */
export function topologyStarts(
  topology: Topology,
  ordered: readonly TargetSlot[],
  room: number,
): Starts {
  const key = topology.spec.key;
  const waiting = ordered.map((t): Member => ({
    node: t.node.name,
    zone: zoneOf(t.node, key),
    stage: 'waiting',
    patched: false,
    replaced: false,
  }));
  return chooseStarts(waiting, topology.groups, topology.spec, topology.order, room);
}

export function topologyStatus(topology: Topology): TopologyStatus {
  const groups = topology.order.flatMap((z) => topology.groups.get(z) ?? []);
  const zones: ZoneProgress[] = listed(groups).map((g) => ({
    zone: g.zone,
    targeted: g.targeted,
    patched: g.patched,
    inFlight: g.occupied,
  }));
  return {
    key: topology.spec.key,
    groups: groups.length,
    finished: groups.filter((g) => g.unsettled === 0).length,
    unlabeled: topology.groups.get('')?.targeted ?? 0,
    zones,
  };
}
