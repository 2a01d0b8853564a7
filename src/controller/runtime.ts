// Wires the controller: four reflectors (the agents' Pods among them), one work queue, the leader lease,
// and /healthz, /readyz, /metrics. Only the leader reconciles; a replica that
// loses the lease stops (the caller exits) so it can never act beside a new one.
import type { Server } from 'node:http';
import type { KubeConfig } from '../kube/config.js';
import type { LivePatch, LivePatchNode } from '../api/generated/types.js';
import { EventRecorder } from '../kube/events.js';
import { Reflector, type KubeObject } from '../kube/reflector.js';
import { onApiRequest } from '../kube/requests.js';
import { serveEndpoints } from '../observability/endpoints.js';
import {
  nodeEssentials,
  PATHS,
  podEssentials,
  withoutManagedFields,
  type NodeObject,
  type PodObject,
} from '../kube/resources.js';
import type { Logger } from '../log.js';
import type { AlertGateSpec } from '../api/generated/types.js';
import type { AlertSourceView } from './alert-gate.js';
import { AlertSource } from './alert-source.js';
import { LeaderElector, type LeaderOptions } from './leader.js';
import type { LivenessWindows } from './liveness.js';
import { ControllerMetrics } from './metrics.js';
import type { RetryPolicy } from './notification-outbox.js';
import { Notifier } from './notifier.js';
import { WorkQueue } from './queue.js';
import { Reconciler, type ReconcilerDeps } from './reconciler.js';
import { Webhook, type WebhookOptions } from './webhook.js';
import { concernedLivePatches, nodeChanged, podChanged } from './wake.js';

const STUCK_WORKER_MS = 5 * 60_000;

export interface ControllerOptions {
  readonly kc: KubeConfig;
  readonly log: Logger;
  readonly lease: LeaderOptions;
  readonly port: number;
  /** Where the agents' Pods are, and how to tell them from others (a label selector). */
  readonly agentPods: { readonly namespace: string; readonly selector: string };
  readonly livenessWindows: LivenessWindows;
  /** Called when this replica loses the lease after holding it. */
  readonly onLostLeadership: () => void;
  /** The alert gate's source; without it a LivePatch that asks for a gate waits (AlertGateNotConfigured). */
  readonly alertSource?: {
    readonly url: string;
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  /** The gate of every LivePatch without spec.rollout.alertGate. */
  readonly defaultAlertGate?: AlertGateSpec;
  /** A webhook for the rollouts' decisions (README, Notifications); none when absent. */
  readonly notifications?: { readonly webhook: WebhookOptions; readonly retry: RetryPolicy };
}

/** What the planner reads of the alert source: its settings and its last reading. */
function alertSourceView(
  o: ControllerOptions,
  source: AlertSource | undefined,
): () => AlertSourceView {
  const defaultGate = o.defaultAlertGate ? { defaultGate: o.defaultAlertGate } : {};
  const intervalMs = o.alertSource?.intervalMs;
  if (!source || intervalMs === undefined) return () => ({ kind: 'none', ...defaultGate });
  return () => ({ kind: 'source', intervalMs, reading: source.reading(), ...defaultGate });
}

export class Controller {
  private readonly metrics: ControllerMetrics;
  private readonly livePatches: Reflector<LivePatch>;
  private readonly livePatchNodes: Reflector<LivePatchNode>;
  private readonly nodes: Reflector<NodeObject>;
  private readonly agentPods: Reflector<PodObject>;
  private readonly queue: WorkQueue;
  private readonly elector: LeaderElector;
  private readonly alertSource: AlertSource | undefined;
  private server: Server | undefined;
  private stopCountingRequests: (() => void) | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.metrics = new ControllerMetrics(o.lease.name);
    const enqueueAll = (): void => {
      for (const lp of this.livePatches.list()) this.queue.add(lp.metadata.name ?? '');
    };
    this.livePatches = this.livePatchReflector();
    this.livePatchNodes = new Reflector(o.kc, {
      path: PATHS.livePatchNodes,
      log: o.log,
      onEvent: this.metrics.watchEvents('livepatchnodes'),
      transform: withoutManagedFields,
      onChange: (name, before) => {
        const labels = this.nodes.get(name)?.metadata.labels ?? {};
        const lpn = this.livePatchNodes.get(name);
        for (const lp of concernedLivePatches(this.livePatches.list(), [labels], [before, lpn]))
          this.queue.add(lp);
        // An entry for a LivePatch that does not exist: its reconcile removes it.
        for (const p of lpn?.spec.patches ?? [])
          if (!this.livePatches.get(p.livePatch)) this.queue.add(p.livePatch);
      },
    });
    // The cache holds what decisions read: at 1,000 nodes a whole Node is most of the controller's heap.
    this.nodes = new Reflector(o.kc, {
      path: PATHS.nodes,
      log: o.log,
      onEvent: this.metrics.watchEvents('nodes'),
      transform: nodeEssentials,
      onChange: (name, before) => {
        const node = this.nodes.get(name);
        if (!nodeChanged(before, node)) return;
        const labels = [before?.metadata.labels ?? {}, node?.metadata.labels ?? {}];
        const lpn = this.livePatchNodes.get(name);
        for (const lp of concernedLivePatches(this.livePatches.list(), labels, [lpn]))
          this.queue.add(lp);
      },
    });
    this.agentPods = this.agentPodCache(o);
    this.elector = new LeaderElector(o.kc, o.lease, o.log, (leading) => {
      this.metrics.setLeader(leading);
      if (leading) enqueueAll();
      else o.onLostLeadership();
    });
    this.alertSource = o.alertSource && this.newAlertSource(o.alertSource, enqueueAll);
    const alerts = alertSourceView(o, this.alertSource);
    const reconciler = new Reconciler({
      kc: o.kc,
      livePatches: this.livePatches,
      livePatchNodes: this.livePatchNodes,
      nodes: this.nodes,
      agentPods: this.agentPods,
      agentNamespace: o.agentPods.namespace,
      livenessWindows: o.livenessWindows,
      events: new EventRecorder(o.kc, 'livepatch-controller', undefined, o.log),
      metrics: this.metrics,
      isLeader: () => this.elector.isLeader(),
      alerts,
      log: o.log,
      ...this.notifications(),
    });
    this.queue = new WorkQueue((key) => reconciler.reconcile(key), o.log, this.metrics);
    this.metrics.watchQueue(this.queue);
  }

  /** One poller of the alert source for every LivePatch; a changed answer looks at all of them again. */
  private newAlertSource(
    source: NonNullable<ControllerOptions['alertSource']>,
    enqueueAll: () => void,
  ): AlertSource {
    return new AlertSource({
      ...source,
      log: this.o.log.child({ component: 'alert-source' }),
      onChange: enqueueAll,
      onAnswer: (ok) => {
        this.metrics.alertSourceUp(ok);
      },
    });
  }

  /** The webhook's sender, whose finished tries wake their LivePatch; nothing without one. */
  private notifications(): Pick<ReconcilerDeps, 'notifications'> {
    const n = this.o.notifications;
    if (!n) return {};
    const notifier = new Notifier(new Webhook(n.webhook), (name) => {
      this.queue.add(name);
    });
    return { notifications: { notifier, retry: n.retry } };
  }

  /** The LivePatches' cache; what each claims, so that its deletion or edit wakes the ones waiting on it. */
  private livePatchReflector(): Reflector<LivePatch> {
    const claims = new Map<string, { patchName: string; series?: string }>();
    const claimKey = (lp: LivePatch): string | undefined =>
      lp.spec.series ? `${lp.spec.series.name}/${lp.spec.series.sequence}` : undefined;
    const reflector: Reflector<LivePatch> = new Reflector(this.o.kc, {
      path: PATHS.livePatches,
      log: this.o.log,
      onEvent: this.metrics.watchEvents('livepatches'),
      transform: withoutManagedFields,
      onChange: (name) => {
        this.queue.add(name);
        const lp = reflector.get(name);
        const before = claims.get(name);
        if (lp) {
          const series = claimKey(lp);
          claims.set(name, { patchName: lp.spec.patchName, ...(series ? { series } : {}) });
          if (before?.series === series) return;
        } else claims.delete(name);
        if (!before) return;
        // A LivePatch gone frees its patchName, and one gone or moved its series sequence: one waiting
        // on it (PatchNameInUse, SeriesSequenceInUse) starts now, not at its resync.
        for (const other of reflector.list()) {
          const freed =
            (!lp && other.spec.patchName === before.patchName) ||
            (before.series !== undefined && claimKey(other) === before.series);
          if (freed) this.queue.add(other.metadata.name ?? '');
        }
      },
    });
    return reflector;
  }

  /** An agent Pod's readiness is its agent's liveness: a change wakes the LivePatches its node concerns. */
  private agentPodCache(o: ControllerOptions): Reflector<PodObject> {
    return new Reflector<PodObject>(o.kc, {
      path: PATHS.pods(o.agentPods.namespace),
      labelSelector: o.agentPods.selector,
      log: o.log,
      onEvent: this.metrics.watchEvents('pods'),
      transform: podEssentials,
      onChange: (name, before) => {
        const pod = this.agentPods.get(name);
        if (!podChanged(before, pod)) return;
        const nodes = new Set([before?.spec?.nodeName, pod?.spec?.nodeName]);
        for (const node of nodes) {
          if (node === undefined) continue;
          const lpn = this.livePatchNodes.get(node);
          if (lpn?.status?.agentPod?.name !== name) continue;
          const labels = this.nodes.get(node)?.metadata.labels ?? {};
          for (const lp of concernedLivePatches(this.livePatches.list(), [labels], [lpn]))
            this.queue.add(lp);
        }
      },
    });
  }

  /** A worker stuck in one reconcile this long is wedged: let the kubelet restart the pod. */
  private livenessProblem(): string | undefined {
    const busy = this.queue.busyFor();
    return busy > STUCK_WORKER_MS
      ? `the worker has been on one LivePatch for ${Math.round(busy / 1000)}s`
      : undefined;
  }

  private synced(): boolean {
    return this.reflectors().every((r) => r.hasSynced);
  }

  private reflectors(): Pick<
    Reflector<KubeObject>,
    'start' | 'stop' | 'hasSynced' | 'waitForSync'
  >[] {
    return [this.livePatches, this.livePatchNodes, this.nodes, this.agentPods];
  }

  async start(): Promise<void> {
    this.server = this.serve();
    this.stopCountingRequests = onApiRequest((request) => {
      this.metrics.apiRequest(request);
    });
    for (const r of this.reflectors()) r.start();
    this.alertSource?.start();
    await Promise.all(this.reflectors().map((r) => r.waitForSync()));
    this.queue.start();
    // Campaign only with full caches: a new leader must plan from the whole picture.
    this.elector.start();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.elector.stop();
    this.alertSource?.stop();
    for (const r of this.reflectors()) r.stop();
    this.server?.close();
    this.stopCountingRequests?.();
  }

  private serve(): Server {
    return serveEndpoints(this.o.port, this.metrics.registry, {
      '/healthz': () => this.livenessProblem(),
      '/readyz': () => (this.synced() ? undefined : 'caches not synced'),
    });
  }
}
