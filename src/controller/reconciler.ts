// The thin shell around the planner: read the caches, plan, write the
// LivePatchNode entries, the status (only when it changed), the Events, and
// the finalizer. Every write reads its own result back into the cache, so the
// next pass never plans from an older picture than the one just written.
// Status is written at once when something the planner or a reader acts on
// changed (phase, step, a condition's status, failed nodes), and otherwise
// (counts, reasons, messages) at most once a second: at 1,000 nodes the counts change on
// nearly every pass.
import type { KubeConfig } from '../kube/config.js';
import { canonicalJson } from '../api/canonical.js';
import { API_VERSION, FIELD_MANAGER, FINALIZER, LIVEPATCH } from '../api/constants.js';
import type {
  DesiredPatch,
  LivePatch,
  LivePatchNode,
  LivePatchStatus,
} from '../api/generated/types.js';
import type { KernelRelease, NodeName } from '../api/names.js';
import type { EventRecorder } from '../kube/events.js';
import { rawJson } from '../kube/raw.js';
import type { Reflector } from '../kube/reflector.js';
import { isConflict, mergePatch, PATHS, type NodeObject } from '../kube/resources.js';
import type { Logger } from '../log.js';
import { aggregateStatus } from './aggregator.js';
import { decisionEvents } from './decision-events.js';
import { HeartbeatClock } from './heartbeats.js';
import type { ControllerMetrics } from './metrics.js';
import { planRollout, type Plan } from './planner.js';
import { statusWrite } from './status-write.js';
import { classifyNodes, patchNameOwner, type NodeFacts } from './targets.js';
import type { WorkResult } from './queue.js';

export interface ReconcilerDeps {
  readonly kc: KubeConfig;
  readonly livePatches: Reflector<LivePatch>;
  readonly livePatchNodes: Reflector<LivePatchNode>;
  readonly nodes: Reflector<NodeObject>;
  readonly events: EventRecorder;
  readonly metrics: ControllerMetrics;
  readonly isLeader: () => boolean;
  readonly log: Logger;
}

/** Nothing waits forever on a watch: time-based rules (heartbeats, pauses) are looked at again. */
const RESYNC_MS = 30_000;
const WRITE_ATTEMPTS = 5;
const WRITE_CONCURRENCY = 8;
export function nodeFacts(node: NodeObject): NodeFacts {
  const kernel = node.status?.nodeInfo?.kernelVersion;
  return {
    name: node.metadata.name as NodeName,
    labels: node.metadata.labels ?? {},
    ...(kernel ? { kernel: kernel as KernelRelease } : {}),
    ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
  };
}

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

export class Reconciler {
  private readonly heartbeats = new HeartbeatClock();
  /** When each LivePatch's status was last written by this replica. */
  private readonly statusWrittenAt = new Map<string, number>();
  private readonly facts = new WeakMap<NodeObject, NodeFacts>();

  constructor(private readonly d: ReconcilerDeps) {}

  async reconcile(name: string): Promise<WorkResult> {
    const lp = this.d.livePatches.get(name);
    if (!lp || !this.d.isLeader()) return {};
    const finalizers = lp.metadata.finalizers ?? [];
    const deleting = lp.metadata.deletionTimestamp !== undefined;
    if (deleting && !finalizers.includes(FINALIZER)) return {};
    if (!deleting && !finalizers.includes(FINALIZER)) {
      await this.setFinalizers(lp, [...finalizers, FINALIZER]);
      return {};
    }
    const started = performance.now();
    const now = Date.now();
    const lpns = this.heartbeats.observe(this.d.livePatchNodes.list(), now);
    const slots = classifyNodes(lp, this.nodeFacts(), lpns, now);
    const plan = planRollout(lp, slots, now, patchNameOwner(lp, this.d.livePatches.list()));
    const log = this.d.log.child({ livePatch: name });
    await this.writeEntries(name, plan.writes, log);
    const status = aggregateStatus(lp, slots, plan, now);
    const write = statusWrite(lp.status, status, {
      now,
      lastWrittenAt: this.statusWrittenAt.get(name) ?? 0,
      releasingFinalizer: plan.releaseFinalizer,
    });
    if (write.kind === 'now') await this.writeStatus(lp, status, now);
    if (write.kind !== 'later') await this.recordEvents(lp, status, plan, log);
    this.d.metrics.nodesStarted(name, plan.started.length);
    if (plan.started.length) log.info('started nodes', { nodes: plan.started, phase: plan.phase });
    if (plan.releaseFinalizer)
      await this.setFinalizers(
        lp,
        finalizers.filter((f) => f !== FINALIZER),
      );
    this.d.metrics.observe(name, status, (performance.now() - started) / 1000);
    return {
      requeueAfterMs: Math.min(
        plan.requeueAfterMs ?? RESYNC_MS,
        RESYNC_MS,
        write.kind === 'later' ? write.inMs : Infinity,
      ),
    };
  }

  private async writeStatus(lp: LivePatch, status: LivePatchStatus, now: number): Promise<void> {
    if (canonicalJson(status) === canonicalJson(lp.status)) return;
    const name = lp.metadata.name ?? '';
    // Merge patch: keys the new status lacks must be sent as null to go away.
    const body = { unhealthyNodes: null, ...status };
    this.ensureLeader();
    const written = await mergePatch<LivePatch>(
      this.d.kc,
      `${PATHS.livePatches}/${name}/status`,
      { status: body },
      FIELD_MANAGER.controller,
    );
    this.d.livePatches.observe(written);
    this.statusWrittenAt.set(name, now);
    this.d.metrics.statusWritten(name);
  }

  /** Events come from the change between the status written last and this one, so only with a write. */
  private async recordEvents(
    lp: LivePatch,
    status: LivePatchStatus,
    plan: Plan,
    log: Logger,
  ): Promise<void> {
    const name = lp.metadata.name ?? '';
    for (const event of decisionEvents(lp.status, status, plan)) {
      this.ensureLeader();
      log.info(event.message, { reason: event.reason });
      this.d.metrics.event(name, event.reason);
      await this.d.events.record(
        { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name, uid: lp.metadata.uid ?? '' },
        event,
      );
    }
  }

  /** NodeFacts per cached Node object, made once: a pass over 1,000 nodes allocates none. */
  private nodeFacts(): NodeFacts[] {
    return this.d.nodes.list().map((node) => {
      let facts = this.facts.get(node);
      if (!facts) {
        facts = nodeFacts(node);
        this.facts.set(node, facts);
      }
      return facts;
    });
  }

  /** Several at a time: starting 100 nodes one request after another held the pass (and its garbage) for a second. */
  private async writeEntries(
    livePatch: string,
    writes: ReadonlyMap<NodeName, DesiredPatch | null>,
    log: Logger,
  ): Promise<void> {
    const queue = [...writes];
    const lane = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift())
        await this.writeEntry(livePatch, next[0], next[1], log);
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, lane));
  }

  /** Checked before every write: a replica that lost the lease mid-reconcile must not write beside the new leader. */
  private ensureLeader(): void {
    if (!this.d.isLeader())
      throw new NotLeaderError('lost the leader lease; dropping this reconcile');
  }

  private async setFinalizers(lp: LivePatch, finalizers: string[]): Promise<void> {
    this.ensureLeader();
    const patch = { metadata: { finalizers, resourceVersion: lp.metadata.resourceVersion } };
    const written = await mergePatch<LivePatch>(
      this.d.kc,
      `${PATHS.livePatches}/${lp.metadata.name ?? ''}`,
      patch,
      FIELD_MANAGER.controller,
    );
    this.d.livePatches.observe(written);
  }

  /** Replaces this LivePatch's entry in the node's list, guarded by resourceVersion; re-reads on conflict. */
  private async writeEntry(
    livePatch: string,
    node: NodeName,
    entry: DesiredPatch | null,
    log: Logger,
  ): Promise<void> {
    const path = `${PATHS.livePatchNodes}/${node}`;
    let current = this.d.livePatchNodes.get(node);
    for (let attempt = 1; current; attempt++) {
      const others = (current.spec.patches ?? []).filter((p) => p.livePatch !== livePatch);
      const patches = entry ? [...others, entry] : others;
      const patch = {
        metadata: { resourceVersion: current.metadata.resourceVersion },
        spec: { patches },
      };
      try {
        this.d.livePatchNodes.observe(
          await mergePatch<LivePatchNode>(this.d.kc, path, patch, FIELD_MANAGER.controller),
        );
        log.debug('wrote node entry', {
          node,
          state: entry?.state ?? 'removed',
          generation: entry?.generation,
        });
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= WRITE_ATTEMPTS) throw err;
        current = await rawJson<LivePatchNode>(this.d.kc, 'GET', path);
      }
    }
  }
}
