// Writes the agent's status to its node's LivePatchNode in the background, so
// that the kernel loop, and the stall guard in it, never waits on the API
// server: the latest status wins, a failed write is retried until the server
// answers again, and a missing LivePatchNode is created first. When a status
// is due is status-write.ts's call.
import type { KubeConfig } from '../../src/kube/config.js';
import { FIELD_MANAGER } from '../../src/api/constants.js';
import type {
  AgentPod,
  LivePatchNode,
  LivePatchNodeStatus,
} from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import type { Clock } from '../../src/clock.js';
import { isNotFound, patchStatus } from '../../src/kube/resources.js';
import type { Logger } from '../../src/log.js';
import { ensureLivePatchNode, livePatchNodePath } from './livepatchnode.js';
import { statusKey } from '../pass/reporting.js';
import { agentStatusWrite, type WrittenStatus } from './status-write.js';

export interface ReporterOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: NodeName;
  readonly clock: Clock;
  readonly log: Logger;
  /** A status is written again after this long even when nothing changed. */
  readonly heartbeatMs: number;
  /**
   * The Pod this agent runs in, written with every status (none: the key is
   * removed). With it the agent's Pod readiness tells the controller it is
   * alive, so no heartbeat is written: status only changes.
   */
  readonly pod?: AgentPod;
  /** Wait before trying a failed write again. */
  readonly retryMs: number;
  /** Called after each write: a change, or a heartbeat alone. */
  readonly onWritten?: (why: 'change' | 'heartbeat') => void;
  /** The LivePatchNode as the API server stored a write, so readers need not wait for its watch event. */
  readonly onStored?: (lpn: LivePatchNode) => void;
}

export class StatusReporter {
  private latest: LivePatchNodeStatus | undefined;
  private written: WrittenStatus | undefined;
  private inFlight: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Since when the latest status has differed from the written one. */
  private differsSince: number | undefined;
  private settle: NodeJS.Timeout | undefined;
  private failure: { since: number; error: string } | undefined;
  private stopped = false;

  constructor(private readonly o: ReporterOptions) {}

  /** Hands over the status of the latest kernel pass; written when it changed or a heartbeat is due. */
  submit(status: LivePatchNodeStatus): void {
    this.latest = status;
    this.flush();
  }

  /** Since when, and why, writes have failed; undefined while they reach the API server. */
  failing(): { readonly since: number; readonly error: string } | undefined {
    return this.failure;
  }

  /** Whether any status has reached the API server yet. */
  hasWritten(): boolean {
    return this.written !== undefined;
  }

  /**
   * The stored status lost what was written (its LivePatchNode made again, or
   * its status cleared): write the latest again, whether or not it changed.
   */
  rewrite(): void {
    if (this.inFlight) return;
    this.written = undefined;
    this.flush();
  }

  /** Waits for the write in flight, then writes nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.settle) clearTimeout(this.settle);
    await this.inFlight;
  }

  private flush(): void {
    const status = this.latest;
    if (this.inFlight || this.stopped || !status) return;
    const json = JSON.stringify(status);
    const key = statusKey(status);
    if (!this.isDue(json, key)) return;
    this.inFlight = this.write(status, json, key).finally(() => {
      this.inFlight = undefined;
      if (this.latest !== status) this.flush();
    });
  }

  /** A heartbeat, a phase-level change, or progress that has held (and looks again when it will have). */
  private isDue(json: string, key: string): boolean {
    const { write, differsSince } = agentStatusWrite({
      written: this.written,
      json,
      key,
      differsSince: this.differsSince,
      // With a Pod, readiness says the agent is alive: an unchanged status is never written again.
      heartbeatMs: this.o.pod ? Infinity : this.o.heartbeatMs,
      now: this.o.clock.now(),
    });
    this.differsSince = differsSince;
    if (write.kind === 'later') this.flushAfter(write.inMs);
    return write.kind === 'now';
  }

  /** Passes may stop coming (the agent sleeps until its heartbeat): look again when the progress has held. */
  private flushAfter(ms: number): void {
    if (this.settle) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      this.flush();
    }, ms);
  }

  private async write(status: LivePatchNodeStatus, json: string, key: string): Promise<void> {
    const now = this.o.clock.now();
    // Merge patch: absent keys must be sent as null to be removed.
    const body = {
      transitioning: null,
      agentPod: this.o.pod ?? null,
      ...status,
      heartbeatTime: new Date(now).toISOString(),
    };
    const path = livePatchNodePath(this.o.nodeName);
    const kc = this.o.kubeConfig;
    try {
      let stored: LivePatchNode;
      try {
        stored = await patchStatus<LivePatchNode>(kc, path, body, FIELD_MANAGER.agent);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await ensureLivePatchNode(kc, this.o.nodeName, this.o.log);
        stored = await patchStatus<LivePatchNode>(kc, path, body, FIELD_MANAGER.agent);
      }
      this.o.onStored?.(stored);
      const changed = this.written?.json !== json;
      this.written = { json, key, at: now };
      if (this.latest === status) this.differsSince = undefined;
      this.o.onWritten?.(changed ? 'change' : 'heartbeat');
      if (this.failure) {
        const seconds = Math.round((now - this.failure.since) / 1000);
        this.o.log.info('reporting to the API server again', { node: this.o.nodeName, seconds });
      }
      this.failure = undefined;
    } catch (err) {
      this.failed((err as Error).message);
    }
  }

  private failed(error: string): void {
    if (!this.failure) {
      this.o.log.warn('cannot report to the API server; the node keeps guarding and retries', {
        node: this.o.nodeName,
        error,
      });
      this.failure = { since: this.o.clock.now(), error };
    } else this.failure = { ...this.failure, error };
    if (this.stopped) return;
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, this.o.retryMs);
  }
}
