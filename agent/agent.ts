// The node agent: watches its own LivePatchNode, drives the kernel toward
// spec.patches through the pure node state machine, and reports what the
// kernel has in status. It reads the kernel once a second only while a
// transition runs, writes status only when it changed (plus a heartbeat), and
// reverses a stalled transition on its own, with or without a controller.
import type { KubeConfig } from '../src/kube/config.js';
import { API_VERSION, FIELD_MANAGER, LIVEPATCH } from '../src/api/constants.js';
import type {
  Condition,
  DesiredPatch,
  LivePatchNode,
  LivePatchNodeStatus,
  ObservedPatch,
} from '../src/api/generated/types.js';
import type { NodeName } from '../src/api/names.js';
import type { Clock } from '../src/clock.js';
import type { EventRecorder } from '../src/kube/events.js';
import { Reflector } from '../src/kube/reflector.js';
import { patchStatus, PATHS } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import { runAction, type ActionFailure } from './actions.js';
import { readKernel } from './kernel-view.js';
import { ensureLivePatchNode, livePatchNodePath } from './livepatchnode.js';
import { nextBakeEnd, nextPoll, statusKey, withBake } from './reporting.js';
import type { KernelBackend } from './kernel/types.js';
import type { ModuleFetcher } from './module-source.js';
import { decideNode, type KernelView, type NodeAction, type NodeDecision } from './node-machine.js';

export interface AgentOptions {
  readonly nodeName: NodeName;
  readonly kubeConfig: KubeConfig;
  readonly backend: KernelBackend;
  readonly fetchModule: ModuleFetcher;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly version: string;
  readonly heartbeatMs?: number;
  readonly pollMs?: number;
  readonly unloadTimeoutMs?: number;
  readonly retryMs?: number;
  /** Called after each reconcile, for metrics and health. */
  readonly onReconciled?: (status: LivePatchNodeStatus) => void;
  /** Called after each status write: a change, or a heartbeat alone. */
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
}

const MAX_ACTIONS_PER_PASS = 6;
const REFUSAL_COOLDOWN_MS = 60_000;
/** Task counts and messages alone are written at most this often; phases at once. */
const PROGRESS_WRITE_MS = 10_000;

/** A patch whose last action failed: no new action before `until`; `entry` is what it reports meanwhile. */
interface Cooldown {
  readonly until: number;
  readonly retryable: boolean;
  readonly entry: ObservedPatch;
}

export class Agent {
  private readonly reflector: Reflector<LivePatchNode>;
  private readonly path: string;
  private previous: ObservedPatch[] = [];
  private readonly cooldowns = new Map<string, Cooldown>();
  /** The last refusal announced per LivePatch, so a retried refusal is not announced again. */
  private readonly announced = new Map<string, string>();
  private written: { json: string; key: string; at: number } | undefined;
  /** The kernel's taint just before this agent loaded each LivePatch's module. */
  private readonly taintAtLoad = new Map<string, number>();
  private readyCondition: Condition | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  lastReconcile = 0;

  constructor(private readonly o: AgentOptions) {
    this.path = livePatchNodePath(o.nodeName);
    this.reflector = new Reflector<LivePatchNode>(o.kubeConfig, {
      path: PATHS.livePatchNodes,
      fieldSelector: `metadata.name=${o.nodeName}`,
      log: o.log,
      onChange: () => {
        this.kick();
      },
    });
  }

  async start(): Promise<void> {
    await this.ensureLivePatchNode();
    this.reflector.start();
    await this.reflector.waitForSync();
    // Adopt what this node reported before a restart, so transitions keep their start time.
    // Failed entries are retried once per agent start.
    this.previous = (this.reflector.get(this.o.nodeName)?.status?.patches ?? []).filter(
      (p) => p.phase !== 'Failed',
    );
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reflector.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private ensureLivePatchNode(): Promise<void> {
    return ensureLivePatchNode(this.o.kubeConfig, this.o.nodeName, this.o.log);
  }

  /** Level-triggered: any wake-up runs one full reconcile; wake-ups during one coalesce into one more. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.running = this.reconcile()
      .catch((err: unknown) => {
        this.o.log.error('reconcile failed; retrying', {
          node: this.o.nodeName,
          error: (err as Error).message,
        });
        this.schedule(this.o.retryMs ?? 5000);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.kick();
    }, ms);
  }

  private desired(): DesiredPatch[] {
    return [...(this.reflector.get(this.o.nodeName)?.spec.patches ?? [])];
  }

  private async reconcile(): Promise<void> {
    const lpn = this.reflector.get(this.o.nodeName);
    if (!lpn) {
      await this.ensureLivePatchNode();
      return;
    }
    const desired = this.desired();
    const before = this.previous;
    this.expireCooldowns();
    let view = await readKernel(this.o.backend, desired, this.o.log);
    let decision = this.decide(desired, view);
    for (let i = 0; decision.action && i < MAX_ACTIONS_PER_PASS; i++) {
      const action = decision.action;
      if (action.kind === 'load')
        this.taintAtLoad.set(action.livePatch, await this.o.backend.tainted());
      const failure = await runAction(action, {
        backend: this.o.backend,
        fetchModule: this.o.fetchModule,
        unloadTimeoutMs: this.o.unloadTimeoutMs ?? 30_000,
        log: this.o.log.child({ node: this.o.nodeName }),
      });
      this.previous = failure
        ? this.withFailure(decision.patches, action, failure)
        : decision.patches;
      await this.announce(decision.patches, action, failure);
      if (failure) break;
      view = await readKernel(this.o.backend, desired, this.o.log);
      decision = this.decide(desired, view);
    }
    if (!decision.action) this.previous = decision.patches;
    const tainted = await this.o.backend.tainted();
    const now = this.o.clock.now();
    this.previous = withBake(this.previous, {
      desired,
      previous: before,
      taintAtLoad: this.taintAtLoad,
      tainted,
      now,
    });
    const transitioning = view.patches.find((p) => p.transition)?.name;
    const status = await this.buildStatus(decision.unmanaged, transitioning, tainted);
    await this.writeStatus(status);
    this.lastReconcile = this.o.clock.now();
    this.o.onReconciled?.(status);
    const inTransition = view.patches.some((p) => p.transition) || decision.action !== undefined;
    this.schedule(
      inTransition
        ? nextPoll(this.previous, desired, this.o.pollMs ?? 1000, this.o.clock.now())
        : this.nextQuietWake(desired),
    );
  }

  /** The state machine's decision, with patches whose last action failed held back until their cooldown ends. */
  private decide(desired: readonly DesiredPatch[], view: KernelView): NodeDecision {
    const cooling = new Set(this.cooldowns.keys());
    const decision = decideNode(desired, view, this.previous, this.o.clock.now(), cooling);
    const patches = decision.patches.map((p) => this.cooldowns.get(p.livePatch)?.entry ?? p);
    return { ...decision, patches };
  }

  /** Idle: the heartbeat, a cooldown's end, or a bake's end (reported at once), whichever comes first. */
  private nextQuietWake(desired: readonly DesiredPatch[]): number {
    const now = this.o.clock.now();
    const heartbeat = this.o.heartbeatMs ?? 30_000;
    const retries = [...this.cooldowns.values()].map((c) => Math.max(100, c.until - now));
    const bake = nextBakeEnd(this.previous, desired, now);
    return Math.max(1, Math.min(heartbeat, ...retries, bake ?? Infinity));
  }

  private expireCooldowns(): void {
    for (const [livePatch, cooldown] of this.cooldowns) {
      if (cooldown.until > this.o.clock.now()) continue;
      this.cooldowns.delete(livePatch);
      // A transient failure is forgotten so the next pass tries afresh; a refusal stays Failed for its generation.
      if (cooldown.retryable)
        this.previous = this.previous.filter(
          (p) => p.livePatch !== livePatch || p.phase !== 'Failed',
        );
    }
  }

  /**
   * Records a failed action. An unload that fails keeps the entry's phase (a
   * Stalled node stays Stalled and is never loaded again); anything else is
   * Failed. Either way the patch rests before its next action: 10 s after a
   * transient failure, 60 s after a refusal.
   */
  private withFailure(
    patches: ObservedPatch[],
    action: NodeAction,
    failure: ActionFailure,
  ): ObservedPatch[] {
    const decided = patches.find((p) => p.livePatch === action.livePatch);
    if (!decided) return patches;
    const entry: ObservedPatch =
      action.kind === 'unload'
        ? { ...decided, message: `${decided.message ?? ''}; unloading failed: ${failure.message}` }
        : { ...decided, phase: 'Failed', message: failure.message };
    const retryable = failure.retryable || action.kind === 'unload';
    const rest = retryable ? (this.o.retryMs ?? 10_000) : REFUSAL_COOLDOWN_MS;
    this.cooldowns.set(action.livePatch, { until: this.o.clock.now() + rest, retryable, entry });
    return patches.map((p) => (p.livePatch === action.livePatch ? entry : p));
  }

  /** Events for what only a node can find: a refused module, a stall reversed by the node guard. */
  private async announce(
    patches: ObservedPatch[],
    action: NodeAction,
    failure: ActionFailure | undefined,
  ): Promise<void> {
    const target = { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name: action.livePatch };
    // One Event per distinct refusal, not one per retry.
    if (failure && !failure.retryable && this.announced.get(action.livePatch) !== failure.message) {
      this.announced.set(action.livePatch, failure.message);
      await this.o.events.record(target, {
        type: 'Warning',
        reason: failure.reason,
        message: `node ${this.o.nodeName}: ${failure.message}`,
      });
    }
    const entry = patches.find((p) => p.livePatch === action.livePatch);
    if (!failure && action.kind === 'setEnabled' && action.why === 'stalled' && entry) {
      await this.o.events.record(target, {
        type: 'Warning',
        reason: 'NodeStalled',
        message: `node ${this.o.nodeName}: ${entry.message ?? 'transition stalled; reversing'}`,
      });
    }
  }

  private async buildStatus(
    unmanaged: LivePatchNodeStatus['unmanaged'],
    transitioning: string | undefined,
    tainted: number,
  ): Promise<LivePatchNodeStatus> {
    const patches = this.previous;
    this.readyCondition ??= {
      type: 'Ready',
      status: 'True',
      reason: 'AgentRunning',
      message: `agent ${this.o.version} drives this node's kernel through the ${this.o.backend.kind} backend`,
      lastTransitionTime: new Date(this.o.clock.now()).toISOString(),
    };
    return {
      kernelRelease: await this.o.backend.release(),
      backend: this.o.backend.kind,
      agentVersion: this.o.version,
      kernelTainted: tainted,
      patchedCount: patches.filter((p) => p.phase === 'Patched').length,
      ...(transitioning ? { transitioning } : {}),
      patches,
      unmanaged: unmanaged ?? [],
      conditions: [this.readyCondition],
    };
  }

  /**
   * Writes when a phase-level fact changed, when only progress changed and the
   * last write is PROGRESS_WRITE_MS old, or when the heartbeat is due.
   */
  private async writeStatus(status: LivePatchNodeStatus): Promise<void> {
    const json = JSON.stringify(status);
    const key = statusKey(status);
    const now = this.o.clock.now();
    const age = this.written ? now - this.written.at : Infinity;
    const heartbeatDue = age >= (this.o.heartbeatMs ?? 30_000);
    const due =
      heartbeatDue ||
      this.written?.key !== key ||
      (this.written.json !== json && age >= PROGRESS_WRITE_MS);
    if (!due) return;
    // Merge patch: absent keys must be sent as null to be removed.
    const body = { transitioning: null, ...status, heartbeatTime: new Date(now).toISOString() };
    await patchStatus(this.o.kubeConfig, this.path, body, FIELD_MANAGER.agent);
    const changed = this.written?.json !== json;
    this.written = { json, key, at: now };
    this.o.onStatusWritten?.(changed ? 'change' : 'heartbeat');
  }
}
