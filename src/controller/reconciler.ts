// The thin shell around the planner: read the caches, plan, write the
// LivePatchNode entries, the status (only when it changed), the Events, and
// the finalizer. Every write reads its own result back into the cache, so the
// next pass never plans from an older picture than the one just written.
// Status is written at once when something the planner or a reader acts on
// changed (phase, step, a condition's status, failed nodes), and otherwise
// (counts, reasons, messages) at most once a second: at 1,000 nodes the counts change on
// nearly every pass.
import type { KubeConfig } from '../kube/config.js';
import { mergePatchFrom } from '../kube/merge-patch.js';
import { canonicalJson } from '../api/canonical.js';
import { API_VERSION, FIELD_MANAGER, FINALIZER, LIVEPATCH } from '../api/constants.js';
import { clip, listSome } from '../api/listing.js';
import type {
  DesiredPatch,
  LivePatch,
  LivePatchNode,
  LivePatchStatus,
} from '../api/generated/types.js';
import type { NodeName } from '../api/names.js';
import type { EventRecorder } from '../kube/events.js';
import { rawJson } from '../kube/raw.js';
import type { KubeObject, Reflector } from '../kube/reflector.js';
import {
  isConflict,
  isNotFound,
  mergePatch,
  PATHS,
  type NodeObject,
  type PodObject,
} from '../kube/resources.js';
import type { Logger } from '../log.js';
import { aggregateStatus } from './aggregator.js';
import { judgeGate, namedByAlerts, type AlertSourceView, type GateVerdict } from './alert-gate.js';
import { decisionEvents } from './decision-events.js';
import { notificationDecisions } from './notification-decisions.js';
import {
  dueNotifications,
  nextDueInMs,
  nextOutbox,
  type OutboxPass,
  type RetryPolicy,
} from './notification-outbox.js';
import type { Notifier } from './notifier.js';
import { HeartbeatClock } from './heartbeats.js';
import { agentLiveness, podState, type Liveness, type LivenessWindows } from './liveness.js';
import { PodStateClock } from './pod-clock.js';
import type { ControllerMetrics } from './metrics.js';
import type { Plan } from './plan.js';
import { planRollout } from './planner.js';
import { statusWrite, type StatusWrite } from './status-write.js';
import { nodeFacts, type NodeFacts } from './node-facts.js';
import {
  classifyNodes,
  patchNameOwner,
  seriesSequenceOwner,
  type AgentSilence,
} from './targets.js';
import type { WorkResult } from './queue.js';

/** What the reconciler uses of a cache: reads, and its own writes read back. */
export type Cache<T extends KubeObject> = Pick<Reflector<T>, 'get' | 'list' | 'observe'>;

export interface ReconcilerDeps {
  readonly kc: KubeConfig;
  readonly livePatches: Cache<LivePatch>;
  readonly livePatchNodes: Cache<LivePatchNode>;
  readonly nodes: Cache<NodeObject>;
  /** The agents' Pods, in `agentNamespace`: their readiness is the liveness of agents that name one. */
  readonly agentPods: Pick<Cache<PodObject>, 'get'>;
  readonly agentNamespace: string;
  readonly livenessWindows: LivenessWindows;
  readonly events: Pick<EventRecorder, 'record'>;
  readonly metrics: ControllerMetrics;
  readonly isLeader: () => boolean;
  /** The alert source's last reading, for the alert gate; absent: the controller has no source. */
  readonly alerts?: () => AlertSourceView;
  readonly log: Logger;
  /** The webhook that hears the rollout's decisions; none without --notify-url-file. */
  readonly notifications?: { readonly notifier: Notifier; readonly retry: RetryPolicy };
}

/** Nothing waits forever on a watch: time-based rules (heartbeats, pauses) are looked at again. */
const RESYNC_MS = 30_000;
const WRITE_ATTEMPTS = 5;
const WRITE_CONCURRENCY = 8;
/** A node whose entry could not be written is tried again this soon. */
const UNWRITTEN_RETRY_MS = 5000;
const UNWRITTEN_REMEMBERED = 10_000;
/** Nodes named in a message; the rest are counted. */
const LISTED_NODES = 5;
const NO_SOURCE: AlertSourceView = { kind: 'none' };
/** Whether a LivePatch is gone from the API server, not just from this replica's cache. */
type Gone = (livePatch: string) => Promise<boolean>;

/**
 * Events follow the status they describe; a deletion still held by an entry
 * it could not remove writes no status, so it repeats no Event every retry
 * either: they come with the pass that releases the finalizer.
 */
function eventsDue(write: StatusWrite, plan: Plan, unwritten: number): boolean {
  if (write.kind === 'later') return false;
  return !(plan.releaseFinalizer && unwritten > 0);
}

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

export class Reconciler {
  private readonly heartbeats = new HeartbeatClock();
  private readonly podStates = new PodStateClock();
  /** When each LivePatch's status was last written by this replica. */
  private readonly statusWrittenAt = new Map<string, number>();
  private readonly facts = new WeakMap<NodeObject, NodeFacts>();
  /** The last write error announced per LivePatch/node, so a retry is not announced again. */
  private readonly unwritten = new Map<string, string>();

  constructor(private readonly d: ReconcilerDeps) {}

  async reconcile(name: string): Promise<WorkResult> {
    const lp = this.d.livePatches.get(name);
    if (!this.d.isLeader()) return {};
    if (!lp) {
      this.forget(name);
      return this.removeOrphans(name);
    }
    const finalizers = lp.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return this.withoutFinalizer(lp, finalizers);
    const started = performance.now();
    const now = Date.now();
    const lpns = this.heartbeats.observe(this.d.livePatchNodes.list(), now);
    const agents = this.agentsAt(now);
    this.countAgents(lpns, agents.judge);
    const gate = this.alertGate(lp, now);
    const slots = classifyNodes(lp, this.nodeFacts(), lpns, now, {
      alerts: namedByAlerts(gate),
      silence: agents.silence,
    });
    const all = this.d.livePatches.list();
    const claims = {
      patchNameOwner: patchNameOwner(lp, all),
      seriesSequenceOwner: seriesSequenceOwner(lp, all),
    };
    const plan = planRollout(lp, slots, now, claims, gate);
    const log = this.d.log.child({ livePatch: name });
    const unwritten = await this.writeEntries(lp, plan.writes, log);
    const [status, outbox] = this.withOutbox(lp, aggregateStatus(lp, slots, plan, now), plan, now);
    const write = statusWrite(lp.status, status, {
      now,
      lastWrittenAt: this.statusWrittenAt.get(name) ?? 0,
      releasingFinalizer: plan.releaseFinalizer,
    });
    if (write.kind === 'now') await this.writeStatus(lp, status, now);
    const notifyInMs = await this.afterStatus(lp, outbox, write, now, log);
    if (eventsDue(write, plan, unwritten)) await this.recordEvents(lp, status, plan, log);
    this.d.metrics.nodesStarted(name, plan.started.length);
    if (plan.started.length) log.info('started nodes', { nodes: plan.started, phase: plan.phase });
    // An entry whose removal failed still makes its agent guard the patch: deletion waits for it.
    if (plan.releaseFinalizer && unwritten === 0)
      await this.setFinalizers(
        lp,
        finalizers.filter((f) => f !== FINALIZER),
      );
    this.d.metrics.observe(name, lp.spec.patchName, status, (performance.now() - started) / 1000);
    const retry = unwritten ? UNWRITTEN_RETRY_MS : Infinity;
    return {
      requeueAfterMs: Math.min(
        plan.requeueAfterMs ?? RESYNC_MS,
        RESYNC_MS,
        write.kind === 'later' ? write.inMs : Infinity,
        retry,
        notifyInMs,
        // A node's agent Pod in its grace: look again when it ends.
        agents.recheckInMs(),
      ),
    };
  }

  /** The alert gate's verdict on this LivePatch, from the source's last reading. */
  private alertGate(lp: LivePatch, now: number): GateVerdict | undefined {
    const isNode = (name: string): boolean => this.d.nodes.get(name) !== undefined;
    return judgeGate(lp, this.d.alerts?.() ?? NO_SOURCE, isNode, now);
  }

  /** A LivePatch gone: its metrics, and its notifications' tries (the outbox went with it). */
  private forget(name: string): void {
    this.d.metrics.forget(name);
    this.d.notifications?.notifier.forget(name);
  }

  /** Each node's agent judged once per pass (liveness.ts), and when a Pod's grace ends among the nodes classified. */
  private agentsAt(now: number): {
    judge: (node: string, lpn: LivePatchNode | undefined) => Liveness;
    silence: AgentSilence;
    recheckInMs: () => number;
  } {
    const verdicts = new Map<string, Liveness>();
    const judge = (node: string, lpn: LivePatchNode | undefined): Liveness => {
      let verdict = verdicts.get(node);
      if (!verdict) {
        verdict = this.judgeAgent(node, lpn, now);
        verdicts.set(node, verdict);
      }
      return verdict;
    };
    let recheck = Infinity;
    const silence: AgentSilence = (node, lpn) => {
      const verdict = judge(node, lpn);
      if (verdict.kind === 'silent') return verdict.why;
      recheck = Math.min(recheck, verdict.silentInMs ?? Infinity);
      return undefined;
    };
    return { judge, silence, recheckInMs: () => recheck };
  }

  private judgeAgent(node: string, lpn: LivePatchNode | undefined, now: number): Liveness {
    const named = lpn?.status?.agentPod;
    const state = named ? podState(named, node, this.d.agentPods.get(named.name)) : undefined;
    return agentLiveness({
      lpn,
      ...(named && state
        ? { pod: { state, since: this.podStates.since(node, named.uid, state, now) } }
        : {}),
      namespace: this.d.agentNamespace,
      now,
      windows: this.d.livenessWindows,
    });
  }

  /** Agents the controller hears (liveness.ts), and the rest. */
  private countAgents(
    lpns: ReadonlyMap<string, LivePatchNode>,
    judge: (node: string, lpn: LivePatchNode) => Liveness,
  ): void {
    let silent = 0;
    let reporting = 0;
    for (const [node, lpn] of lpns) {
      if (judge(node, lpn).kind === 'alive') reporting++;
      else silent++;
    }
    this.podStates.keepOnly(new Set(lpns.keys()));
    this.d.metrics.agentHeartbeats(reporting, silent);
  }

  /** A LivePatch being deleted after its finalizer came off needs nothing; any other gets the finalizer first. */
  private async withoutFinalizer(
    lp: LivePatch,
    finalizers: readonly string[],
  ): Promise<WorkResult> {
    if (lp.metadata.deletionTimestamp === undefined)
      await this.setFinalizers(lp, [...finalizers, FINALIZER]);
    return {};
  }

  /**
   * A LivePatch that does not exist has no entry on any node: one there was
   * added or renamed by hand (or outlived its LivePatch, whose finalizer was
   * removed by hand). The controller owns spec, so it goes; a patch it had
   * loaded stays in the kernel, listed by the agent as unmanaged. Every node
   * may hold one (a finalizer removed by hand), so the writes go in lanes
   * like a rollout's and one Event sums them up.
   */
  private async removeOrphans(name: string): Promise<WorkResult> {
    const log = this.d.log.child({ livePatch: name });
    const gone = this.goneCheck();
    if (!(await gone(name))) return {};
    const holding = this.d.livePatchNodes
      .list()
      .filter((lpn) => lpn.spec.patches?.some((p) => p.livePatch === name))
      .map((lpn): [NodeName, null] => [(lpn.metadata.name ?? '') as NodeName, null]);
    const removed = new Map<string, NodeName[]>([[name, []]]);
    const failed = await this.inLanes(holding, async (node) => {
      for (const orphan of [name, ...(await this.writeEntry(name, node, null, gone, log))])
        removed.set(orphan, [...(removed.get(orphan) ?? []), node]);
    });
    await this.announceRemoved(removed, log);
    for (const [node, error] of failed)
      log.warn('cannot remove the entry of a LivePatch that does not exist; retrying', {
        node,
        error,
      });
    return failed.length ? { requeueAfterMs: UNWRITTEN_RETRY_MS } : {};
  }

  /**
   * Whether a LivePatch the cache lacks is really gone, asked of the API
   * server: a new leader's LivePatch watch may lag, and removing the entries
   * of a LivePatch just created would leave its in-flight nodes unguarded.
   * Asked once per name per pass (orphans are rare); any answer but 404 throws.
   */
  private goneCheck(): Gone {
    const asked = new Map<string, Promise<boolean>>();
    return (livePatch) => {
      let answer = asked.get(livePatch);
      if (!answer) {
        answer = rawJson<LivePatch>(this.d.kc, 'GET', `${PATHS.livePatches}/${livePatch}`).then(
          () => false,
          (err: unknown) => {
            if (isNotFound(err)) return true;
            throw err;
          },
        );
        asked.set(livePatch, answer);
      }
      return answer;
    };
  }

  /** One Event per removed LivePatch, on it (gone, but its Events are still listed by name), naming a few nodes. */
  private async announceRemoved(
    removed: ReadonlyMap<string, readonly NodeName[]>,
    log: Logger,
  ): Promise<void> {
    for (const [livePatch, nodes] of removed) {
      if (!nodes.length) continue;
      const which = listSome(nodes, LISTED_NODES);
      log.warn('removed entries for a LivePatch that does not exist', {
        entry: livePatch,
        count: nodes.length,
        nodes: which,
      });
      const whose = nodes.length === 1 ? `node ${which}` : `${nodes.length} nodes (${which})`;
      await this.d.events.record(
        { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name: livePatch, uid: '' },
        {
          type: 'Warning',
          reason: 'EntryRemoved',
          message:
            `spec.patches of ${whose} had an entry for LivePatch ${livePatch}, which does not exist; the ` +
            'controller removed it (it owns spec: edit the LivePatch, never its nodes). A patch loaded ' +
            "from it stays in the kernel, listed under the LivePatchNode's status.unmanaged",
        },
      );
    }
  }

  private async writeStatus(lp: LivePatch, status: LivePatchStatus, now: number): Promise<void> {
    if (canonicalJson(status) === canonicalJson(lp.status)) return;
    const name = lp.metadata.name ?? '';
    // A merge patch keeps what it does not name, at any depth: name what went away as null.
    const body = mergePatchFrom(lp.status ?? {}, status);
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

  /**
   * The status with status.notifications after this pass: the decisions it
   * makes recorded as pending, in the same write as the status that makes
   * them (so each is derived once, whichever replica leads), and the tries
   * since the last pass folded in. As it was without a webhook.
   */
  private withOutbox(
    lp: LivePatch,
    next: LivePatchStatus,
    plan: Plan,
    now: number,
  ): [LivePatchStatus, OutboxPass | undefined] {
    const n = this.d.notifications;
    if (!n) return [next, undefined];
    const name = lp.metadata.name ?? '';
    const decisions = notificationDecisions(lp, lp.status, next, plan, now);
    const pass = nextOutbox(
      lp.status?.notifications,
      decisions,
      n.notifier.outcomes(name),
      now,
      n.retry,
    );
    return [pass.outbox ? { ...next, notifications: pass.outbox } : next, pass];
  }

  /**
   * Once the outbox is written, what the tries it folded in came to; then
   * the due tries start. Returns when the next one falls due.
   */
  private async afterStatus(
    lp: LivePatch,
    pass: OutboxPass | undefined,
    write: StatusWrite,
    now: number,
    log: Logger,
  ): Promise<number> {
    if (pass && write.kind === 'now') await this.reportDeliveries(lp, pass, log);
    return this.sendDue(lp.metadata.name ?? '', now) ?? Infinity;
  }

  /** Once the outbox is written: what was delivered, what failed, what was given up. */
  private async reportDeliveries(lp: LivePatch, pass: OutboxPass, log: Logger): Promise<void> {
    const name = lp.metadata.name ?? '';
    for (const n of pass.delivered)
      log.info('notification delivered', { decision: n.decision, id: n.id, tries: n.tries + 1 });
    for (const n of pass.retrying)
      log.warn('notification not delivered; trying again', {
        decision: n.decision,
        id: n.id,
        tries: n.tries,
        next: n.nextAttemptAt,
        error: n.lastError,
      });
    for (const { notice, why } of pass.gaveUp) {
      log.warn('notification given up', { decision: notice.decision, id: notice.id, why });
      this.ensureLeader();
      await this.d.events.record(
        { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name, uid: lp.metadata.uid ?? '' },
        {
          type: 'Warning',
          reason: 'NotificationFailed',
          message: clip(`webhook notification "${notice.message}" given up ${why}`, 1024),
        },
      );
    }
  }

  /**
   * Starts the due tries of the outbox the API server now holds (only what is
   * recorded is ever sent); returns when the next one falls due.
   */
  private sendDue(name: string, now: number): number | undefined {
    const n = this.d.notifications;
    if (!n || !this.d.isLeader()) return undefined;
    const stored = this.d.livePatches.get(name)?.status?.notifications;
    n.notifier.settle(name, stored?.pending ?? [], dueNotifications(stored, now));
    return nextDueInMs(stored, now);
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

  /**
   * Several at a time: starting 100 nodes one request after another held the
   * pass (and its garbage) for a second. A node whose write fails is skipped,
   * said once in an Event and retried soon; the rest of the fleet goes on.
   * Returns how many were not written.
   */
  private async writeEntries(
    lp: LivePatch,
    writes: ReadonlyMap<NodeName, DesiredPatch | null>,
    log: Logger,
  ): Promise<number> {
    const livePatch = lp.metadata.name ?? '';
    const gone = this.goneCheck();
    const removed = new Map<string, NodeName[]>();
    const failed = await this.inLanes([...writes], async (node, entry) => {
      for (const orphan of await this.writeEntry(livePatch, node, entry, gone, log))
        removed.set(orphan, [...(removed.get(orphan) ?? []), node]);
      this.unwritten.delete(`${livePatch}/${node}`);
    });
    await this.announceRemoved(removed, log);
    for (const [node, error] of failed) await this.reportUnwritten(lp, node, error, log);
    return failed.length;
  }

  /** WRITE_CONCURRENCY writes at a time; the nodes whose write failed, with why. */
  private async inLanes<E>(
    items: readonly (readonly [NodeName, E])[],
    write: (node: NodeName, entry: E) => Promise<void>,
  ): Promise<[NodeName, string][]> {
    const queue = [...items];
    const failed: [NodeName, string][] = [];
    const lane = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          await write(...next);
        } catch (err) {
          if (err instanceof NotLeaderError) throw err;
          failed.push([next[0], (err as Error).message]);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, lane));
    return failed;
  }

  /** An Event per node and distinct error, not per retry. */
  private async reportUnwritten(
    lp: LivePatch,
    node: NodeName,
    error: string,
    log: Logger,
  ): Promise<void> {
    const name = lp.metadata.name ?? '';
    log.warn('cannot write the node entry; the other nodes go on', { node, error });
    const key = `${name}/${node}`;
    if (this.unwritten.get(key) === error) return;
    if (this.unwritten.size >= UNWRITTEN_REMEMBERED) this.unwritten.clear();
    this.unwritten.set(key, error);
    await this.d.events.record(
      { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name, uid: lp.metadata.uid ?? '' },
      {
        type: 'Warning',
        reason: 'NodeEntryNotWritten',
        message: `cannot write the entry of node ${node} (retrying; the other nodes go on): ${clip(error, 600)}`,
      },
    );
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

  /**
   * Replaces this LivePatch's entry in the node's list, guarded by
   * resourceVersion; re-reads on conflict. Returns the other LivePatches whose
   * entries went with it because they do not exist.
   */
  private async writeEntry(
    livePatch: string,
    node: NodeName,
    entry: DesiredPatch | null,
    gone: Gone,
    log: Logger,
  ): Promise<string[]> {
    const path = `${PATHS.livePatchNodes}/${node}`;
    let current = this.d.livePatchNodes.get(node);
    for (let attempt = 1; current; attempt++) {
      const all = current.spec.patches ?? [];
      const others = all.filter((p) => p.livePatch !== livePatch);
      // Entries of LivePatches that do not exist go too: one renamed by hand would otherwise hold this patchName.
      const orphans: string[] = [];
      for (const p of others)
        if (!this.d.livePatches.get(p.livePatch) && (await gone(p.livePatch)))
          orphans.push(p.livePatch);
      const kept = others.filter((p) => !orphans.includes(p.livePatch));
      const patches = entry ? [...kept, entry] : kept;
      const patch = {
        metadata: { resourceVersion: current.metadata.resourceVersion },
        spec: { patches },
      };
      this.ensureLeader();
      try {
        this.d.livePatchNodes.observe(
          await mergePatch<LivePatchNode>(this.d.kc, path, patch, FIELD_MANAGER.controller),
        );
        log.debug('wrote node entry', {
          node,
          state: entry?.state ?? 'removed',
          generation: entry?.generation,
        });
        return orphans;
      } catch (err) {
        if (!isConflict(err) || attempt >= WRITE_ATTEMPTS) throw err;
        current = await rawJson<LivePatchNode>(this.d.kc, 'GET', path);
      }
    }
    return [];
  }
}
