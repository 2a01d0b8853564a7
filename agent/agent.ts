// The node agent: watches its own LivePatchNode, drives the kernel toward
// spec.patches through the pure node state machine, and reports what the
// kernel has in status. It reads the kernel once a second only while a
// transition runs, writes status only when it changed (plus a heartbeat), and
// reverses a stalled transition on its own, with or without a controller, and
// with or without the API server: the kernel loop never waits on the API (the
// status is written in the background), and it remembers on the node what it
// was asked for, so that an agent restarted during an outage still guards.
import type { KubeConfig } from '../src/kube/config.js';
import { API_VERSION, LIVEPATCH } from '../src/api/constants.js';
import { AGENT_HEARTBEAT_MS } from '../src/api/heartbeat.js';
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
import { PATHS } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import { runAction, type ActionFailure } from './actions.js';
import { readKernel } from './kernel-view.js';
import { kernelProfile, unsupportedReason, type KernelProfile } from './kernel/profile.js';
import { fitMessages, nextBakeEnd, nextPoll, withBake } from './reporting.js';
import type { KernelBackend } from './kernel/types.js';
import { ensureLivePatchNode } from './livepatchnode.js';
import {
  DEFAULT_RETRY_POLICY,
  fetchMessage,
  type FetchState,
  type RetryPolicy,
} from './module/fetch-retry.js';
import { ModuleFetches } from './module/module-fetches.js';
import type { ModuleFetcher } from './module/module-source.js';
import type { NodeState, NodeStateFile } from './node-state.js';
import { StatusReporter } from './status-reporter.js';
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
  /** Wait before trying again what failed for the whole node: a status write, or a pass that threw. */
  readonly retryMs?: number;
  /** How long a patch rests after an action on it failed in a way a later try may fix. */
  readonly failureRestMs?: number;
  /** When a module fetch that may work later is retried, and for how long (module/fetch-retry.ts). */
  readonly fetchRetry?: RetryPolicy;
  /** Called after each pass of the kernel loop, for metrics and liveness. */
  readonly onReconciled?: (status: LivePatchNodeStatus) => void;
  /** The node-local memory; without it an agent started during an outage guards nothing. */
  readonly state?: NodeStateFile;
  /** How long a start without node-local state waits for the API server before guarding nothing. */
  readonly startSyncWaitMs?: number;
  /** Called after each status write: a change, or a heartbeat alone. */
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
}

const MAX_ACTIONS_PER_PASS = 6;
const RETRY_MS = 5_000;
const FAILURE_REST_MS = 10_000;
const REFUSAL_COOLDOWN_MS = 60_000;

/** A patch whose last action failed: no new action before `until`; `entry` is what it reports meanwhile. */
interface Cooldown {
  readonly until: number;
  readonly retryable: boolean;
  readonly entry: ObservedPatch;
}

export class Agent {
  private readonly reflector: Reflector<LivePatchNode>;
  private readonly reporter: StatusReporter;
  /** The desired patches remembered on the node, used until the API server answers. */
  private remembered: readonly DesiredPatch[] = [];
  private readonly pendingEvents = new Set<Promise<void>>();
  private previous: ObservedPatch[] = [];
  private readonly cooldowns = new Map<string, Cooldown>();
  private readonly fetches: ModuleFetches;
  /** The last refusal announced per LivePatch, so a retried refusal is not announced again. */
  private readonly announced = new Map<string, string>();
  /** The kernel's taint just before this agent loaded each LivePatch's module. */
  private readonly taintAtLoad = new Map<string, number>();
  private readyCondition: Condition | undefined;
  /** Read once at start: the release does not change without a reboot, which restarts the agent. */
  private kernel:
    { profile: KernelProfile; refusal?: { reason: string; message: string } } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /**
   * Set once start() has taken up the node's memory (or its last report): a
   * watch event before then must not run a pass that knows nothing of it, or
   * that pass reports no patches, saves that as the node's memory, and the
   * next one takes a stall reversal in the kernel for a transition heading
   * the wrong way.
   */
  private ready = false;
  /** The node's memory was found at start: what this agent saves continues it. */
  private resumed = false;
  lastReconcile = 0;

  constructor(private readonly o: AgentOptions) {
    this.reporter = new StatusReporter({
      kubeConfig: o.kubeConfig,
      nodeName: o.nodeName,
      clock: o.clock,
      log: o.log,
      heartbeatMs: o.heartbeatMs ?? AGENT_HEARTBEAT_MS,
      retryMs: o.retryMs ?? RETRY_MS,
      ...(o.onStatusWritten ? { onWritten: o.onStatusWritten } : {}),
    });
    this.fetches = new ModuleFetches({
      fetch: o.fetchModule,
      clock: o.clock,
      policy: o.fetchRetry ?? DEFAULT_RETRY_POLICY,
      onSettled: (entry, state) => {
        this.fetchSettled(entry, state);
      },
    });
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
    this.kernel = await this.inspectKernel();
    if (this.kernel.refusal)
      this.o.log.error(this.kernel.refusal.message, { node: this.o.nodeName });
    const saved = await this.o.state?.load();
    if (saved) this.resume(saved);
    this.resumed = saved !== undefined;
    this.reflector.start();
    if (!saved) await this.adoptReported();
    this.ready = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reflector.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.fetches.stop();
    await this.reporter.stop();
    await Promise.all(this.pendingEvents);
  }

  /** Why the node's status is not reaching the API server (readiness), or undefined. */
  reportProblem(): string | undefined {
    return this.reporter.problem();
  }

  /**
   * Takes up where the agent before this one stopped, from the node's own
   * memory: newer than (or as new as) its last status in the API. Failed
   * entries are retried once per agent start.
   */
  private resume(saved: NodeState): void {
    this.remembered = saved.desired;
    this.previous = saved.patches.filter((p) => p.phase !== 'Failed');
    this.o.log.info('resuming from the node-local state', {
      node: this.o.nodeName,
      patches: saved.desired.map((d) => d.livePatch),
    });
  }

  /** Without node-local state: adopt what this node last reported, so transitions keep their start time. */
  private async adoptReported(): Promise<void> {
    const adopt = (): void => {
      if (this.previous.length > 0) return;
      this.previous = (this.reflector.get(this.o.nodeName)?.status?.patches ?? []).filter(
        (p) => p.phase !== 'Failed',
      );
    };
    const waitMs = this.o.startSyncWaitMs ?? 10_000;
    // A real timer, not the clock: this waits for the network.
    let timer: NodeJS.Timeout | undefined;
    const synced = await Promise.race([
      this.reflector.waitForSync().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(resolve, waitMs, false))),
    ]);
    clearTimeout(timer);
    if (synced) {
      adopt();
      // Created now rather than by the first status write, so that it exists once the agent has started.
      if (!this.reflector.get(this.o.nodeName))
        await ensureLivePatchNode(this.o.kubeConfig, this.o.nodeName, this.o.log).catch(
          (err: unknown) => {
            this.o.log.warn('cannot create the LivePatchNode yet; the status write will', {
              node: this.o.nodeName,
              error: (err as Error).message,
            });
          },
        );
      return;
    }
    this.o.log.warn(
      'the API server does not answer and this node has no saved state: nothing to guard until it does',
      { node: this.o.nodeName, waitedMs: waitMs },
    );
    void this.reflector.waitForSync().then(() => {
      adopt();
      this.kick();
    });
  }

  /** Whether this node can take livepatches at all; if not, the agent reports why and loads nothing. */
  private async inspectKernel(): Promise<NonNullable<Agent['kernel']>> {
    const release = await this.o.backend.release();
    const profile = kernelProfile(release);
    const tooOld = unsupportedReason(profile);
    if (tooOld) return { profile, refusal: { reason: 'UnsupportedKernel', message: tooOld } };
    if (!(await this.o.backend.livepatchSupported())) {
      const message =
        `kernel ${release} has no /sys/kernel/livepatch: it was built without livepatch support ` +
        '(CONFIG_LIVEPATCH), so no livepatch can be applied to this node';
      return { profile, refusal: { reason: 'NoLivepatchSupport', message } };
    }
    return { profile };
  }

  /** Level-triggered: any wake-up runs one full reconcile; wake-ups during one coalesce into one more. */
  private kick(): void {
    if (this.stopped || !this.ready) return;
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
        this.schedule(this.o.retryMs ?? RETRY_MS);
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

  /** From the API once it answered (its cache outlives an outage), else from the node's memory. */
  private desired(): DesiredPatch[] {
    if (!this.reflector.hasSynced) return [...this.remembered];
    return [...(this.reflector.get(this.o.nodeName)?.spec.patches ?? [])];
  }

  private async reconcile(): Promise<void> {
    const desired = this.desired();
    const before = this.previous;
    this.expireCooldowns();
    const kernel = this.kernel ?? (this.kernel = await this.inspectKernel());
    const { view, decision } = await this.act(desired, kernel, before);
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
    this.lastReconcile = this.o.clock.now();
    this.o.onReconciled?.(status);
    await this.save(desired, this.previous);
    this.reporter.submit(status);
    const inTransition = view.patches.some((p) => p.transition) || decision.action !== undefined;
    this.schedule(
      inTransition
        ? nextPoll(this.previous, desired, this.o.pollMs ?? 1000, this.o.clock.now())
        : this.nextQuietWake(desired),
    );
  }

  /** Reads the kernel and carries out the state machine's actions, one at a time, until none is left or one fails. */
  private async act(
    desired: readonly DesiredPatch[],
    kernel: NonNullable<Agent['kernel']>,
    before: readonly ObservedPatch[],
  ): Promise<{ view: KernelView; decision: NodeDecision }> {
    const read = (): ReturnType<typeof readKernel> =>
      readKernel(this.o.backend, kernel.profile, desired, this.o.log);
    let view = await read();
    let decision = this.decide(desired, view);
    for (let i = 0; decision.action && i < MAX_ACTIONS_PER_PASS; i++) {
      const action = decision.action;
      if (action.kind === 'load')
        this.taintAtLoad.set(action.livePatch, await this.o.backend.tainted());
      await this.remember(desired, decision.patches, before);
      const failure = await runAction(action, {
        backend: this.o.backend,
        release: kernel.profile.release,
        startFetch: (entry) => {
          this.fetches.start(entry);
        },
        unloadTimeoutMs: this.o.unloadTimeoutMs ?? 30_000,
        log: this.o.log.child({ node: this.o.nodeName }),
        ...(kernel.refusal ? { refuseLoads: kernel.refusal.message } : {}),
      });
      this.previous = failure
        ? this.withFailure(decision.patches, action, failure)
        : decision.patches;
      this.announce(decision.patches, action, failure);
      if (failure) break;
      view = await read();
      decision = this.decide(desired, view);
    }
    return { view, decision };
  }

  /**
   * Saves what this pass decided, bake stamps and all, before the kernel is
   * touched: an agent killed right after the action must find what it was
   * doing (a stall's reversal, say), not the pass before it.
   */
  private async remember(
    desired: readonly DesiredPatch[],
    patches: readonly ObservedPatch[],
    before: readonly ObservedPatch[],
  ): Promise<void> {
    if (!this.o.state) return;
    const stamped = withBake(patches, {
      desired,
      previous: before,
      taintAtLoad: this.taintAtLoad,
      tainted: await this.o.backend.tainted(),
      now: this.o.clock.now(),
    });
    await this.save(desired, stamped);
  }

  /**
   * Saved only once it knows its past (its memory, or its last report in the
   * API): a pass with neither, during an outage, would save "no patches", and
   * the agent after it would take a stall reversal under way for a transition
   * heading the wrong way.
   */
  private async save(
    desired: readonly DesiredPatch[],
    patches: readonly ObservedPatch[],
  ): Promise<void> {
    if (this.resumed || this.reflector.hasSynced) await this.o.state?.save(desired, patches);
  }

  /** The state machine's decision, with patches whose last action failed held back until their cooldown ends. */
  private decide(desired: readonly DesiredPatch[], view: KernelView): NodeDecision {
    const cooling = new Set(this.cooldowns.keys());
    const decision = decideNode(desired, view, this.previous, this.o.clock.now(), {
      resting: cooling,
      fetches: this.fetches.view(desired),
    });
    const patches = decision.patches.map((p) => this.cooldowns.get(p.livePatch)?.entry ?? p);
    return { ...decision, patches };
  }

  /** Idle: the heartbeat, a cooldown's end, a fetch's retry, or a bake's end (reported at once), whichever comes first. */
  private nextQuietWake(desired: readonly DesiredPatch[]): number {
    const now = this.o.clock.now();
    const heartbeat = this.o.heartbeatMs ?? AGENT_HEARTBEAT_MS;
    const retries = [...this.cooldowns.values()].map((c) => Math.max(100, c.until - now));
    const bake = nextBakeEnd(this.previous, desired, now);
    const fetch = this.fetches.nextRetryIn(now);
    return Math.max(1, Math.min(heartbeat, ...retries, bake ?? Infinity, fetch ?? Infinity));
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
    const rest = retryable ? (this.o.failureRestMs ?? FAILURE_REST_MS) : REFUSAL_COOLDOWN_MS;
    this.cooldowns.set(action.livePatch, { until: this.o.clock.now() + rest, retryable, entry });
    return patches.map((p) => (p.livePatch === action.livePatch ? entry : p));
  }

  /** An Event written in the background: an API server that does not answer must not hold the guard. */
  private track(write: Promise<void>): void {
    this.pendingEvents.add(write);
    void write.finally(() => this.pendingEvents.delete(write));
  }

  /**
   * A fetch attempt ended: look again at once (load, or report the wait). An
   * Event when the first attempt fails (not one per retry) and when the fetch
   * fails for good.
   */
  private fetchSettled(entry: DesiredPatch, state: FetchState): void {
    if (this.stopped) return;
    if (state.kind === 'waiting' && state.attempt === 1)
      this.warn(entry.livePatch, state.reason, fetchMessage(state));
    if (state.kind === 'failed') this.warn(entry.livePatch, state.reason, state.message);
    this.kick();
  }

  /** A Warning Event on the LivePatch, once per distinct message. */
  private warn(livePatch: string, reason: string, message: string): void {
    if (this.announced.get(livePatch) === message) return;
    this.announced.set(livePatch, message);
    const target = { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name: livePatch };
    this.track(
      this.o.events.record(target, {
        type: 'Warning',
        reason,
        message: `node ${this.o.nodeName}: ${message}`,
      }),
    );
  }

  /** Events for what only a node can find: a refused module, a stall reversed by the node guard. */
  private announce(
    patches: ObservedPatch[],
    action: NodeAction,
    failure: ActionFailure | undefined,
  ): void {
    // One Event per distinct refusal, not one per retry.
    if (failure && !failure.retryable) this.warn(action.livePatch, failure.reason, failure.message);
    const target = { apiVersion: API_VERSION, kind: LIVEPATCH.kind, name: action.livePatch };
    const entry = patches.find((p) => p.livePatch === action.livePatch);
    if (!failure && action.kind === 'setEnabled' && action.why === 'stalled' && entry) {
      this.track(
        this.o.events.record(target, {
          type: 'Warning',
          reason: 'NodeStalled',
          message: `node ${this.o.nodeName}: ${entry.message ?? 'transition stalled; reversing'}`,
        }),
      );
    }
  }

  private async buildStatus(
    unmanaged: LivePatchNodeStatus['unmanaged'],
    transitioning: string | undefined,
    tainted: number,
  ): Promise<LivePatchNodeStatus> {
    const patches = fitMessages(this.previous);
    const refusal = this.kernel?.refusal;
    this.readyCondition ??= {
      type: 'Ready',
      status: refusal ? 'False' : 'True',
      reason: refusal?.reason ?? 'AgentRunning',
      message:
        refusal?.message ??
        `agent ${this.o.version} drives this node's kernel through the ${this.o.backend.kind} backend`,
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
}
