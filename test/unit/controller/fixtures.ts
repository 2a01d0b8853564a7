// A fleet as plain data for the controller's pure functions: a LivePatch with
// the CRD's defaults, Nodes, LivePatchNodes whose agents answer like the real
// one, and one reconcile pass (classify → plan → write → aggregate → events).
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { API_VERSION } from '../../../src/api/constants.js';
import type {
  BlockingTask,
  DesiredPatch,
  KernelTarget,
  LivePatch,
  LivePatchNode,
  LivePatchSpec,
  LivePatchStatus,
  NodePatchPhase,
  ObservedPatch,
  RolloutSpec,
  StallPolicy,
} from '../../../src/api/generated/types.js';
import type { KernelRelease, NodeName, PatchName } from '../../../src/api/names.js';
import { durationMs } from '../../../src/api/quantities.js';
import { aggregateStatus } from '../../../src/controller/aggregator.js';
import {
  judgeGate,
  namedByAlerts,
  type AlertSourceView,
} from '../../../src/controller/alert-gate.js';
import { decisionEvents } from '../../../src/controller/decision-events.js';
import type { Plan } from '../../../src/controller/plan.js';
import { planRollout } from '../../../src/controller/planner.js';
import type { NodeFacts } from '../../../src/controller/node-facts.js';
import { classifyNodes, type NodeSlot } from '../../../src/controller/targets.js';
import type { EventRecord } from '../../../src/kube/events.js';

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
/** T0 plus seconds. */
export const at = (s: number): number => T0 + s * 1000;
export const iso = (ms: number): string => new Date(ms).toISOString();

export const LP = 'cve-2024-1086';
export const PATCH = 'livepatch_cve_2024_1086' as PatchName;
export const K26 = '6.1.0-26-amd64' as KernelRelease;
export const K27 = '6.1.0-27-amd64' as KernelRelease;
export const K5 = '5.10.0-30-amd64' as KernelRelease;
export const QEMU: BlockingTask = { pid: 812, comm: 'qemu-kvm' };

export const module = (tag: string): KernelTarget['module'] => ({
  url: `https://mirror.example/${tag}.ko`,
  sha256: tag
    .padEnd(64, '0')
    .slice(0, 64)
    .replace(/[^0-9a-f]/g, 'a'),
});

export interface LivePatchInput {
  readonly name?: string;
  readonly generation?: number;
  readonly deletionTimestamp?: Date;
  readonly spec?: Partial<Omit<LivePatchSpec, 'rollout' | 'stall'>> & {
    readonly rollout?: Partial<RolloutSpec>;
    readonly stall?: Partial<StallPolicy>;
  };
  readonly status?: LivePatchStatus;
}

/** A LivePatch as the API server returns it: every default of the CRD filled in. */
export function livePatch(o: LivePatchInput = {}): LivePatch {
  const metadata: V1ObjectMeta = {
    name: o.name ?? LP,
    generation: o.generation ?? 1,
    ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp } : {}),
  };
  const { rollout, stall, ...rest } = o.spec ?? {};
  return {
    apiVersion: API_VERSION,
    kind: 'LivePatch',
    metadata,
    spec: {
      patchName: PATCH,
      state: 'Enabled',
      kernels: [{ release: K26, module: module('k26') }],
      failureBudget: 0,
      ...rest,
      rollout: { maxUnavailable: 1, bakeTime: '0s', paused: false, ...rollout },
      stall: { timeout: '60s', action: 'Rollback', allowForce: false, ...stall },
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

/** The same LivePatch with some metadata changed. */
export function withMetadata(lp: LivePatch, changes: Partial<V1ObjectMeta>): LivePatch {
  return { ...lp, metadata: Object.assign({}, lp.metadata, changes) };
}

/** `kubectl delete` on a LivePatch with our finalizer. */
export const deleted = (lp: LivePatch, now: number): LivePatch =>
  withMetadata(lp, { deletionTimestamp: new Date(now) });

/** A spec edit, as the API server records it: a new generation. */
export function edit(lp: LivePatch, spec: LivePatchInput['spec']): LivePatch {
  const { rollout, stall, ...rest } = spec ?? {};
  return {
    ...withMetadata(lp, { generation: (lp.metadata.generation ?? 1) + 1 }),
    spec: {
      ...lp.spec,
      ...rest,
      rollout: { ...lp.spec.rollout, ...rollout },
      stall: { ...lp.spec.stall, ...stall },
    },
  };
}

export const nodeName = (i: number): NodeName => `node-${String(i).padStart(2, '0')}` as NodeName;

export function node(name: string, o: Partial<Omit<NodeFacts, 'name'>> = {}): NodeFacts {
  return { name: name as NodeName, labels: {}, kernel: K26, ready: true, ...o };
}

export function entry(o: Partial<DesiredPatch> = {}): DesiredPatch {
  return {
    livePatch: LP as DesiredPatch['livePatch'],
    patchName: PATCH,
    state: 'Enabled',
    module: module('k26'),
    generation: 1,
    stallTimeout: '60s',
    allowForce: false,
    ...o,
  };
}

export function observed(phase: NodePatchPhase, o: Partial<ObservedPatch> = {}): ObservedPatch {
  return {
    livePatch: LP as ObservedPatch['livePatch'],
    patchName: PATCH,
    phase,
    observedGeneration: 1,
    ...o,
  };
}

export function lpn(
  name: string,
  o: {
    desired?: DesiredPatch[];
    observed?: ObservedPatch[];
    heartbeat?: number;
    transitioning?: string;
  } = {},
): LivePatchNode {
  return {
    apiVersion: API_VERSION,
    kind: 'LivePatchNode',
    metadata: { name },
    spec: { patches: o.desired ?? [] },
    status: {
      kernelRelease: K26,
      backend: 'simulator',
      ...(o.heartbeat !== undefined ? { heartbeatTime: iso(o.heartbeat) } : {}),
      ...(o.transitioning ? { transitioning: o.transitioning } : {}),
      patches: o.observed ?? [],
    },
  };
}

/** The same value with object keys sorted, as the API server serves custom resources back. */
export function roundTrip<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
    ),
  ) as T;
}

/** What a node's agent does with the entry it is given, this tick. */
export type Behaviour = 'settle' | 'stall' | 'wait';

/**
 * Nodes, their LivePatchNodes, and agents that answer like the real one: an
 * Enabled entry ends Patched (or Stalled, for nodes told to stall), a Disabled
 * one Unpatched, and a stall of a generation stays Stalled until a new one.
 */
export class Fleet {
  readonly lpns = new Map<string, LivePatchNode>();
  /** Agents that no longer heart-beat. */
  readonly gone = new Set<string>();
  /** Nodes whose next enable stalls. */
  readonly stallOn = new Set<string>();
  /** Taint flags each node's next load adds (a module that taints on load). */
  readonly loadTaint = new Map<string, number>();

  constructor(
    public nodes: NodeFacts[],
    now: number,
  ) {
    for (const n of nodes) this.lpns.set(n.name, lpn(n.name, { heartbeat: now }));
  }

  static of(count: number, now: number, o: Partial<Omit<NodeFacts, 'name'>> = {}): Fleet {
    return new Fleet(
      Array.from({ length: count }, (_, i) => node(nodeName(i + 1), o)),
      now,
    );
  }

  get(name: string): LivePatchNode {
    const found = this.lpns.get(name);
    if (!found) throw new Error(`no LivePatchNode ${name}`);
    return found;
  }

  desired(name: string, livePatch = LP): DesiredPatch | undefined {
    return this.get(name).spec.patches?.find((p) => p.livePatch === livePatch);
  }

  observed(name: string, livePatch = LP): ObservedPatch | undefined {
    return this.get(name).status?.patches?.find((p) => p.livePatch === livePatch);
  }

  /** The controller's writes, read back from the API server. */
  apply(livePatch: string, writes: ReadonlyMap<NodeName, DesiredPatch | null>): void {
    for (const [name, value] of writes) {
      const current = this.get(name);
      const all = current.spec.patches ?? [];
      const others = all.filter((p) => p.livePatch !== livePatch);
      const patches =
        value === null
          ? others
          : all.some((p) => p.livePatch === livePatch)
            ? all.map((p) => (p.livePatch === livePatch ? value : p))
            : [...all, value];
      this.lpns.set(name, roundTrip({ ...current, spec: { patches } }));
    }
  }

  /** An agent's report on one patch of its node. */
  report(name: string, patch: ObservedPatch, now?: number): void {
    const current = this.get(name);
    const status = current.status ?? {};
    const patches = [
      ...(status.patches ?? []).filter((p) => p.livePatch !== patch.livePatch),
      patch,
    ];
    this.lpns.set(name, {
      ...current,
      status: { ...status, patches, ...(now !== undefined ? { heartbeatTime: iso(now) } : {}) },
    });
  }

  /** The kernel's taint flags on a node, as its agent reports them. */
  taint(name: string, bits: number): void {
    const current = this.get(name);
    this.lpns.set(name, { ...current, status: { ...current.status, kernelTainted: bits } });
  }

  /** Every live agent heart-beats, and reports the end of every bake that is over, as the real one does. */
  beat(now: number): void {
    for (const [name, current] of this.lpns) {
      if (this.gone.has(name)) continue;
      const patches = (current.status?.patches ?? []).map((p) => this.baked(name, p, now));
      this.lpns.set(name, {
        ...current,
        status: { ...current.status, patches, heartbeatTime: iso(now) },
      });
    }
  }

  private baked(name: string, p: ObservedPatch, now: number): ObservedPatch {
    if (p.phase !== 'Patched' || p.taintAfterBake !== undefined || !p.patchedTime) return p;
    const bake = durationMs(this.desired(name, p.livePatch)?.bakeTime ?? '0s');
    if (now < Date.parse(p.patchedTime) + bake) return p;
    return { ...p, taintAfterBake: this.get(name).status?.kernelTainted ?? 0 };
  }

  /** Entries the agent has not answered yet, for its current generation and state. */
  pending(livePatch = LP): string[] {
    return [...this.lpns.keys()].filter((name) => {
      const d = this.desired(name, livePatch);
      const o = this.observed(name, livePatch);
      if (!d || this.gone.has(name)) return false;
      if (o?.observedGeneration !== d.generation) return true;
      if (o.phase === 'Stalled' || o.phase === 'Failed') return false;
      return o.phase !== (d.state === 'Enabled' ? 'Patched' : 'Unpatched');
    });
  }

  /** Up to `limit` agents (in name order) finish what their entry asks; `holdBack` ones do not. */
  settle(
    now: number,
    limit = Infinity,
    livePatch = LP,
    holdBack: ReadonlySet<string> = new Set(),
  ): string[] {
    const done = this.pending(livePatch)
      .filter((n) => !holdBack.has(n))
      .sort()
      .slice(0, limit);
    for (const name of done) this.report(name, this.answer(name, now, livePatch), now);
    return done;
  }

  private answer(name: string, now: number, livePatch: string): ObservedPatch {
    const d = this.desired(name, livePatch);
    if (!d) throw new Error(`no entry on ${name}`);
    const prev = this.observed(name, livePatch);
    const base = {
      livePatch: d.livePatch,
      patchName: d.patchName,
      observedGeneration: d.generation,
    };
    // The real agent: a stall of this generation stays Stalled until a new generation.
    if (prev?.phase === 'Stalled' && prev.observedGeneration === d.generation) return { ...prev };
    if (d.state === 'Enabled' && this.stallOn.has(name)) {
      this.stallOn.delete(name);
      return {
        ...base,
        phase: 'Stalled',
        transitionStartTime: iso(now - 61_000),
        pendingTasks: 1,
        blockingTasks: [QEMU],
        message: 'transition did not finish within 60s (blocked by qemu-kvm[812])',
      };
    }
    if (d.state === 'Disabled') return { ...base, phase: 'Unpatched' };
    if (prev?.phase === 'Patched') return { ...prev, ...base };
    const before = this.get(name).status?.kernelTainted ?? 0;
    this.taint(name, before | (this.loadTaint.get(name) ?? 0));
    return this.baked(
      name,
      { ...base, phase: 'Patched', patchedTime: iso(now), taintBeforeLoad: before },
      now,
    );
  }
}

export interface Pass {
  readonly lp: LivePatch;
  readonly plan: Plan;
  readonly slots: NodeSlot[];
  readonly status: LivePatchStatus;
  readonly events: EventRecord[];
}

/**
 * One reconcile: classify, plan, write the entries, aggregate the status,
 * derive the events; with the alert source's reading, as the reconciler does.
 */
export function reconcile(
  lp: LivePatch,
  fleet: Fleet,
  now: number,
  alerts: AlertSourceView = { kind: 'none' },
): Pass {
  fleet.beat(now);
  const gate = judgeGate(lp, alerts, (n) => fleet.nodes.some((f) => f.name === n), now);
  const slots = classifyNodes(lp, fleet.nodes, fleet.lpns, now, { alerts: namedByAlerts(gate) });
  const plan = planRollout(lp, slots, now, {}, gate);
  fleet.apply(lp.metadata.name ?? '', plan.writes);
  const status = aggregateStatus(lp, slots, plan, now);
  const events = decisionEvents(lp.status, status, plan);
  return { lp: { ...lp, status }, plan, slots, status, events };
}

/** Nodes whose entry of this LivePatch is in transition, as the planner sees them now. */
export function inFlight(lp: LivePatch, fleet: Fleet, now: number): string[] {
  return classifyNodes(lp, fleet.nodes, fleet.lpns, now)
    .filter((s) => (s.kind === 'target' || s.kind === 'leftover') && s.progress === 'inFlight')
    .map((s) => s.node.name);
}

export interface Simulation {
  readonly lp: LivePatch;
  readonly passes: Pass[];
  /** The most entries in transition at once, after any pass's writes. */
  readonly maxInFlight: number;
  readonly now: number;
}

const TERMINAL = new Set(['Complete', 'RolledBack', 'Failed', 'Disabled']);

/**
 * Reconciles until the rollout rests: after every pass, `perTick` agents
 * finish their entries; time moves by the plan's requeue or `tickMs`.
 */
export function simulate(
  start: LivePatch,
  fleet: Fleet,
  o: { now?: number; tickMs?: number; perTick?: number; maxPasses?: number } = {},
): Simulation {
  let lp = start;
  let now = o.now ?? T0;
  let maxInFlight = 0;
  const passes: Pass[] = [];
  for (let i = 0; i < (o.maxPasses ?? 200); i++) {
    const pass = reconcile(lp, fleet, now);
    passes.push(pass);
    lp = pass.lp;
    maxInFlight = Math.max(maxInFlight, inFlight(lp, fleet, now).length);
    const quiet = pass.plan.writes.size === 0 && fleet.pending().length === 0;
    if (TERMINAL.has(pass.plan.phase) && quiet) break;
    fleet.settle(now, o.perTick);
    now += pass.plan.requeueAfterMs ?? o.tickMs ?? 1000;
  }
  return { lp, passes, maxInFlight, now };
}
