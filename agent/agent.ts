// The node agent: watches its own LivePatchNode, drives the kernel toward
// spec.patches one pass at a time (pass/pass-runner.ts, pure steps in pass/pass.ts), and
// reports what the kernel has in status. It reads the kernel once a second only
// while a transition runs, writes status only when it changed (plus a
// heartbeat), and reverses a stalled transition on its own, with or without a
// controller, and with or without the API server: the kernel loop never waits
// on the API (status and Events are written in the background), and it
// remembers on the node what it was asked for (memory/node-memory.ts), so that an
// agent restarted during an outage still guards.
import type { KubeConfig } from '../src/kube/config.js';
import { AGENT_HEARTBEAT_MS } from '../src/api/heartbeat.js';
import type { AgentPod, LivePatchNode, LivePatchNodeStatus } from '../src/api/generated/types.js';
import type { NodeName } from '../src/api/names.js';
import type { Clock } from '../src/clock.js';
import type { EventRecorder } from '../src/kube/events.js';
import { Reflector } from '../src/kube/reflector.js';
import { PATHS } from '../src/kube/resources.js';
import type { Logger } from '../src/log.js';
import { fetchAnnouncements } from './pass/announcements.js';
import { Announcer } from './report/announcer.js';
import { FAILURE_REST_MS } from './pass/cooldowns.js';
import { checkKernel } from './kernel/check.js';
import type { KernelBackend } from './kernel/types.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './module/fetch-retry.js';
import { ModuleFetches } from './module/module-fetches.js';
import type { ModuleFetcher } from './module/module-source.js';
import { NodeMemory } from './memory/node-memory.js';
import type { NodeStateFile } from './memory/node-state.js';
import { EMPTY_MEMORY, readyCondition, type PassMemory } from './pass/pass.js';
import { runPass, type KernelActionDone, type PassDeps } from './pass/pass-runner.js';
import { StatusReporter } from './report/status-reporter.js';

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
  /** Called after each pass of the kernel loop, with what it did to the kernel, for metrics and liveness. */
  readonly onReconciled?: (
    status: LivePatchNodeStatus,
    actions: readonly KernelActionDone[],
  ) => void;
  /** The node-local memory; without it an agent started during an outage guards nothing. */
  readonly state?: NodeStateFile;
  /** How long a start without node-local state waits for the API server before guarding nothing. */
  readonly startSyncWaitMs?: number;
  /** Called after each status write: a change, or a heartbeat alone. */
  readonly onStatusWritten?: (why: 'change' | 'heartbeat') => void;
  /** The Node's status.nodeInfo.bootID as read at start, when it could be. */
  readonly bootID?: string;
  /**
   * The Pod a kubelet runs this agent in (the downward API): the controller
   * then reads the Pod's readiness for liveness and no heartbeat is written.
   * None: a process run by hand, which writes a heartbeat.
   */
  readonly pod?: AgentPod;
  /**
   * With a Pod, readiness turns false only once the API server has not
   * answered for this long (default API_UNREACHABLE_MS): a short outage or an
   * API server restart must not turn every agent's Pod NotReady at once.
   */
  readonly apiUnreachableMs?: number;
  /**
   * Where the agent's own LivePatchNode is cached, told to call `onChange`
   * when it changes (default: a watch of that object alone). The fleet
   * simulator gives each agent a view of one watch it shares among them.
   */
  readonly ownNode?: (onChange: () => void) => OwnNodeCache;
}

/** What the agent reads and records of its own LivePatchNode: a Reflector of it, or a view of a shared one. */
export type OwnNodeCache = Pick<
  Reflector<LivePatchNode>,
  'get' | 'observe' | 'hasSynced' | 'waitForSync' | 'unansweredSince' | 'start' | 'stop'
>;

/** A failed status write, or a pass that threw, is tried again after this long. */
export const RETRY_MS = 5_000;
/**
 * An agent with a Pod is not ready once the API server has not answered its
 * watch or writes for this long. With the readiness probe (10 s) and the
 * controller's grace (15 s) a cut-off agent is silent within 85 s, inside the
 * heartbeat's 90 s window.
 */
export const API_UNREACHABLE_MS = 60_000;
const POLL_MS = 1_000;
const UNLOAD_TIMEOUT_MS = 30_000;

export class Agent {
  private readonly reflector: OwnNodeCache;
  private readonly reporter: StatusReporter;
  private readonly fetches: ModuleFetches;
  private readonly announcer: Announcer;
  private readonly memory: NodeMemory;
  private carried: PassMemory = EMPTY_MEMORY;
  private deps: PassDeps | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** When the pass running now began, and when the next one is due: a stuck kernel loop shows in either. */
  private passStartedAt: number | undefined;
  private nextPassAt: number | undefined;

  constructor(private readonly o: AgentOptions) {
    this.reporter = new StatusReporter({
      kubeConfig: o.kubeConfig,
      nodeName: o.nodeName,
      clock: o.clock,
      log: o.log,
      heartbeatMs: o.heartbeatMs ?? AGENT_HEARTBEAT_MS,
      retryMs: o.retryMs ?? RETRY_MS,
      ...(o.onStatusWritten ? { onWritten: o.onStatusWritten } : {}),
      ...(o.pod ? { pod: o.pod } : {}),
      onStored: (lpn) => {
        this.reflector.observe(lpn);
      },
    });
    this.announcer = new Announcer(o.events, o.nodeName);
    this.fetches = new ModuleFetches({
      fetch: o.fetchModule,
      clock: o.clock,
      policy: o.fetchRetry ?? DEFAULT_RETRY_POLICY,
      // A fetch attempt ended: look again at once (load, or report the wait).
      onSettled: (entry, state) => {
        if (this.stopped) return;
        this.announcer.announce(fetchAnnouncements(entry, state));
        this.kick();
      },
    });
    const onChange = (): void => {
      this.kick();
    };
    this.reflector = o.ownNode
      ? o.ownNode(onChange)
      : new Reflector<LivePatchNode>(o.kubeConfig, {
          path: PATHS.livePatchNodes,
          fieldSelector: `metadata.name=${o.nodeName}`,
          // One object: from the watch cache, not a read of every node's from etcd.
          firstList: 'cache',
          log: o.log,
          onChange,
        });
    this.memory = new NodeMemory({ ...o, reflector: this.reflector });
  }

  /**
   * Passes wait for this: one before the node's memory (or its last report)
   * is taken up would report no patches, save that as the node's memory, and
   * the next one would take a stall reversal for a transition heading the wrong way.
   */
  async start(): Promise<void> {
    const kernel = await checkKernel(this.o.backend);
    if (kernel.refusal) this.o.log.error(kernel.refusal.message, { node: this.o.nodeName });
    const resumed = await this.memory.resume();
    this.reflector.start();
    const previous =
      resumed ??
      (await this.memory.adoptReported((reported) => {
        if (this.carried.previous.length === 0)
          this.carried = { ...this.carried, previous: reported };
        this.kick();
      }));
    this.carried = { ...this.carried, previous };
    this.deps = this.passDeps(kernel);
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reflector.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.fetches.stop();
    await this.reporter.stop();
    await this.announcer.drain();
  }

  /**
   * Why this agent is not ready, or undefined: its kernel loop stuck (a pass
   * running, or the next one overdue, for `stuckMs`), or the API server not
   * hearing it: a status write failing, or, with a Pod (which writes rarely),
   * the API server not answering its watch or writes for apiUnreachableMs.
   */
  readinessProblem(stuckMs: number): string | undefined {
    if (!this.reporter.hasWritten()) return 'no status reported yet';
    const now = this.o.clock.now();
    const late = now - (this.passStartedAt ?? this.nextPassAt ?? now);
    if (late >= stuckMs)
      return this.passStartedAt === undefined
        ? `the kernel loop is ${Math.round(late / 1000)}s late`
        : `the kernel loop has been in one pass for ${Math.round(late / 1000)}s`;
    return this.apiProblem(now);
  }

  /** Without a Pod, a failing heartbeat says it at once; with one, no write may be due: the watch says it too. */
  private apiProblem(now: number): string | undefined {
    const failing = this.reporter.failing();
    const unanswered = this.o.pod ? this.reflector.unansweredSince() : undefined;
    const since = Math.min(failing?.since ?? Infinity, unanswered ?? Infinity);
    const graceMs = this.o.pod ? (this.o.apiUnreachableMs ?? API_UNREACHABLE_MS) : 0;
    if (since === Infinity || now - since < graceMs) return undefined;
    const seconds = Math.round((now - since) / 1000);
    return failing
      ? `cannot report to the API server for ${seconds}s: ${failing.error}`
      : `cannot reach the API server for ${seconds}s (its watch gets no answer)`;
  }

  private passDeps(kernel: PassDeps['kernel']): PassDeps {
    const o = this.o;
    return {
      backend: o.backend,
      kernel,
      fetches: this.fetches,
      memory: this.memory,
      announcer: this.announcer,
      clock: o.clock,
      log: o.log.child({ node: o.nodeName }),
      version: o.version,
      ready: readyCondition(kernel, { ...o, backend: o.backend.kind, now: o.clock.now() }),
      unloadTimeoutMs: o.unloadTimeoutMs ?? UNLOAD_TIMEOUT_MS,
      timings: {
        pollMs: o.pollMs ?? POLL_MS,
        heartbeatMs: o.heartbeatMs ?? AGENT_HEARTBEAT_MS,
        failureRestMs: o.failureRestMs ?? FAILURE_REST_MS,
      },
      ...(o.bootID ? { bootID: o.bootID } : {}),
    };
  }

  /** Level-triggered: any wake-up runs one full pass; wake-ups during one coalesce into one more. */
  private kick(): void {
    const deps = this.deps;
    if (this.stopped || !deps) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.passStartedAt = this.o.clock.now();
    this.nextPassAt = undefined;
    this.running = this.reconcile(deps)
      .catch((err: unknown) => {
        this.o.log.error('reconcile failed; retrying', {
          node: this.o.nodeName,
          error: (err as Error).message,
        });
        this.schedule(this.o.retryMs ?? RETRY_MS);
      })
      .finally(() => {
        this.running = undefined;
        this.passStartedAt = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextPassAt = this.o.clock.now() + ms;
    this.timer = setTimeout(() => {
      this.kick();
    }, ms);
  }

  private async reconcile(deps: PassDeps): Promise<void> {
    const desired = this.memory.desired();
    const pass = await runPass(deps, desired, this.carried);
    this.carried = pass.memory;
    this.o.onReconciled?.(pass.status, pass.actions);
    await this.memory.save(desired, pass.memory.previous);
    // No heartbeat rewrites a lost status with a Pod: write it again when the stored one lacks this Pod.
    const stored = this.reflector.get(this.o.nodeName)?.status?.agentPod;
    if (this.o.pod && this.reflector.hasSynced && stored?.uid !== this.o.pod.uid)
      this.reporter.rewrite();
    this.reporter.submit(pass.status);
    this.schedule(pass.wakeInMs);
  }
}
